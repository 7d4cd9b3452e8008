"""Which requests go first under overload: the ones that finish what a customer started.

Paying a hold turns held seats into sold ones, and a door check-in lets a ticket holder in.
Refusing them during a rush strands seats in holds nobody can pay for, so the router and the
regional replicas admit them ahead of new work (new holds, searches, reads). A hold that carries
an admission pass is a customer the waiting room let in: it goes ahead of the line's polls too
(a forged pass only buys a quick 403).
"""

import re
from collections.abc import Iterable

_PRIORITY_PATH = re.compile(r"/(?:reservations/[^/]+/payments|cinemas/[^/]+/tickets/validate)")
_HOLD_PATH = re.compile(r"/shows/[^/]+/(?:holds|best-available)")
_ADMISSION_PASS = b"x-admission-pass"


def finishes_sale(method: str, path: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> bool:
    """Whether a request pays a hold, checks a ticket in, or is an admitted customer's hold."""
    if method != "POST":
        return False
    if _PRIORITY_PATH.fullmatch(path) is not None:
        return True
    return _HOLD_PATH.fullmatch(path) is not None and any(
        name == _ADMISSION_PASS for name, _ in headers
    )
