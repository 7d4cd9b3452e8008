"""Which requests go first under overload: the ones that finish what a customer started.

Paying a hold turns held seats into sold ones, and a door check-in lets a ticket holder in.
Refusing them during a rush strands seats in holds nobody can pay for, so the router and the
regional replicas admit them ahead of new work (new holds, joins of a line, searches, reads).
A customer the waiting room let in carries an admission pass: their holds and their seat map
go ahead of the line's joins and polls too. The pass is only looked at here (well formed, not
expired: no secret, no lookup); the endpoint verifies it, so a forged one buys a quick 403.
"""

import re
import time
from collections.abc import Iterable

_PAYMENT_PATH = re.compile(r"/reservations/[^/]+/payments")
_CHECK_IN_PATH = re.compile(r"/cinemas/[^/]+/tickets/validate")
_HOLD_PATH = re.compile(r"/shows/[^/]+/(?:holds|best-available)")
_SEAT_MAP_PATH = re.compile(r"/shows/[^/]+/seats")
_ADMISSION_PASS = b"x-admission-pass"
# `<expiry epoch>.<HMAC-SHA256, base64url without padding>` (regional_api/onsale/passes.py).
_PASS = re.compile(rb"([0-9]{1,12})\.[A-Za-z0-9_-]{43}")


def pays(method: str, path: str) -> bool:
    """Whether a request pays a hold: the replica lends its slot while the provider decides."""
    return method == "POST" and _PAYMENT_PATH.fullmatch(path) is not None


def finishes_sale(method: str, path: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> bool:
    """Whether a request pays, checks a ticket in, or is an admitted customer's hold or seat map."""
    if pays(method, path) or (method == "POST" and _CHECK_IN_PATH.fullmatch(path) is not None):
        return True
    if method == "POST":
        admitted = _HOLD_PATH.fullmatch(path) is not None
    else:
        admitted = method == "GET" and _SEAT_MAP_PATH.fullmatch(path) is not None
    return admitted and any(name == _ADMISSION_PASS and _current(value) for name, value in headers)


def _current(admission_pass: bytes) -> bool:
    """Whether a pass looks like one and its window is still open (its signature is not checked)."""
    shape = _PASS.fullmatch(admission_pass)
    return shape is not None and int(shape.group(1)) > time.time()
