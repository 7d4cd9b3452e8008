"""Which requests go first under overload: the ones that finish what a customer started.

Paying a hold turns held seats into sold ones, and a door check-in lets a ticket holder in.
Refusing them during a rush strands seats in holds nobody can pay for, so the router and the
regional replicas admit them ahead of new work (new holds, searches, reads).
"""

import re

_PRIORITY_PATH = re.compile(r"/(?:reservations/[^/]+/payments|cinemas/[^/]+/tickets/validate)")


def finishes_sale(method: str, path: str) -> bool:
    """Whether a request pays a hold or checks a ticket in."""
    return method == "POST" and _PRIORITY_PATH.fullmatch(path) is not None
