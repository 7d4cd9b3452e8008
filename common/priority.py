"""Which requests go first under overload: the ones that finish what a customer started.

Paying a hold turns held seats into sold ones, and a door check-in lets a ticket holder in.
Refusing them during a rush strands seats in holds nobody can pay for, so the router and the
regional replicas admit them ahead of new work (new holds, joins of a line, searches, reads).
A customer the waiting room let in carries an admission pass: their holds and their seat map
go ahead of the line's joins and polls too. The pass is only looked at here (well formed, not
expired: no secret, no lookup); the endpoint verifies it, so a forged one buys a quick 403.
A customer in an on-sale's line asks the region only for what its memory answers in ~46 us
(`regional_api/onsale/polls.py`): its place, with any line ticket, ranked or not. Those asks go
first too: the one at a customer's turn (for its pass) waited behind the opening's thousand joins
and delayed each admitted customer by seconds (docs/benchmarks/onsale-line.md, fifth round), and
the early customers' asks at the draw queued behind them alike (sixth round). So does the
routers' read of a line's state, one for all the watchers of a show.
"""

import re
import time
from collections.abc import Iterable

_PAYMENT_PATH = re.compile(r"/reservations/[^/]+/payments")
_CHECK_IN_PATH = re.compile(r"/cinemas/[^/]+/tickets/validate")
_HOLD_PATH = re.compile(r"/shows/[^/]+/(?:holds|best-available)")
_SEAT_MAP_PATH = re.compile(r"/shows/[^/]+/seats")
_LINE_PATH = re.compile(r"/shows/[^/]+/line(/state)?")
_ADMISSION_PASS = b"x-admission-pass"
_LINE_TICKET = b"x-line-ticket"
# `<number>.<HMAC-SHA256, base64url without padding>` (regional_api/onsale/passes.py): a pass's
# number is its expiry epoch, a line ticket's its line number (`-` in an older ticket).
_PASS = re.compile(rb"([0-9]{1,13})\.[A-Za-z0-9_-]{43}")
_TICKET = re.compile(rb"(?:[0-9]{1,13}|-)\.[A-Za-z0-9_-]{43}")


def pays(method: str, path: str) -> bool:
    """Whether a request pays a hold: the replica lends its slot while the provider decides."""
    return method == "POST" and _PAYMENT_PATH.fullmatch(path) is not None


def finishes_sale(method: str, path: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> bool:
    """Whether a request pays, checks in, or is an admitted customer's hold or map, or a line poll."""
    if pays(method, path) or (method == "POST" and _CHECK_IN_PATH.fullmatch(path) is not None):
        return True
    if method == "GET" and (line := _LINE_PATH.fullmatch(path)) is not None:
        if line.group(1):
            return True  # `/state`: the routers' one read of a line for all its watchers
        return any(name == _LINE_TICKET and _ticket(value) for name, value in headers)
    if method == "POST":
        admitted = _HOLD_PATH.fullmatch(path) is not None
    else:
        admitted = method == "GET" and _SEAT_MAP_PATH.fullmatch(path) is not None
    return admitted and any(name == _ADMISSION_PASS and _current(value) for name, value in headers)


def _ticket(ticket: bytes) -> bool:
    """Whether a line ticket looks like one (not checked: the replica does)."""
    return _TICKET.fullmatch(ticket) is not None


def _current(admission_pass: bytes) -> bool:
    """Whether a pass looks like one and its window is still open (its signature is not checked)."""
    shape = _PASS.fullmatch(admission_pass)
    return shape is not None and int(shape.group(1)) > time.time()
