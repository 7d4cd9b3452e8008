"""Which requests go first under overload: the ones that finish what a customer started.

Paying a hold turns held seats into sold ones, and a door check-in lets a ticket holder in.
Refusing them during a rush strands seats in holds nobody can pay for, so the router and the
regional replicas admit them ahead of new work (new holds, joins of a line, searches, reads).
A customer the waiting room let in carries an admission pass: their holds and their seat map
go ahead of the line's joins and polls too. The pass is only looked at here (well formed, not
expired: no secret, no lookup); the endpoint verifies it, so a forged one buys a quick 403.
A customer on the router's watch (whose read of the line's state goes first already) asks for
its pass when the watch says its number came up: that ask, a poll with a ranked line ticket,
goes first too, or the opening's joins delay each admitted customer by seconds
(docs/benchmarks/onsale-line.md, fifth round); a poll not at its turn is answered from the
replica's memory. The early customers' asks for their rank at the draw (an unranked ticket, a
thousand at once) do not: they would crowd out the holds and payments.
"""

import re
import time
from collections.abc import Iterable

_PAYMENT_PATH = re.compile(r"/reservations/[^/]+/payments")
_CHECK_IN_PATH = re.compile(r"/cinemas/[^/]+/tickets/validate")
_HOLD_PATH = re.compile(r"/shows/[^/]+/(?:holds|best-available)")
_SEAT_MAP_PATH = re.compile(r"/shows/[^/]+/seats")
_LINE_PATH = re.compile(r"/shows/[^/]+/line")
_ADMISSION_PASS = b"x-admission-pass"
_LINE_TICKET = b"x-line-ticket"
# `<number>.<HMAC-SHA256, base64url without padding>`: a pass's number is its expiry epoch
# (regional_api/onsale/passes.py), a ranked line ticket's its rank (before the draw it is `-`).
_NUMBERED = re.compile(rb"([0-9]{1,12})\.[A-Za-z0-9_-]{43}")


def pays(method: str, path: str) -> bool:
    """Whether a request pays a hold: the replica lends its slot while the provider decides."""
    return method == "POST" and _PAYMENT_PATH.fullmatch(path) is not None


def finishes_sale(method: str, path: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> bool:
    """Whether a request pays, checks in, or is an admitted (or called) customer's hold, map or ask."""
    if pays(method, path) or (method == "POST" and _CHECK_IN_PATH.fullmatch(path) is not None):
        return True
    if method == "GET" and _LINE_PATH.fullmatch(path) is not None:
        return any(name == _LINE_TICKET and _ranked(value) for name, value in headers)
    if method == "POST":
        admitted = _HOLD_PATH.fullmatch(path) is not None
    else:
        admitted = method == "GET" and _SEAT_MAP_PATH.fullmatch(path) is not None
    return admitted and any(name == _ADMISSION_PASS and _current(value) for name, value in headers)


def _ranked(ticket: bytes) -> bool:
    """Whether a line ticket looks like one with a place in line (not checked: the replica does)."""
    return _NUMBERED.fullmatch(ticket) is not None


def _current(admission_pass: bytes) -> bool:
    """Whether a pass looks like one and its window is still open (its signature is not checked)."""
    shape = _NUMBERED.fullmatch(admission_pass)
    return shape is not None and int(shape.group(1)) > time.time()
