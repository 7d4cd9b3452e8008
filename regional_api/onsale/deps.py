"""The admission check of holds: a show with a waiting room is held only with a valid pass."""

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import Counter

from common.errors import DatabaseUnavailable, Forbidden
from regional_api.onsale import passes
from regional_api.onsale.rooms import WaitingRooms

PASSES_REFUSED = Counter(
    "onsale_passes_refused_total",
    "Holds of a waiting-room show refused for their admission pass",
    ["reason"],
)


class QueueRequired(Forbidden):
    """The show sells through its waiting room: holds need this customer's admission pass."""

    code = "queue_required"

    def __init__(self, show_id: str, reason: str) -> None:
        super().__init__(
            "this show sells through its waiting room: join the line",
            show_id=show_id,
            reason=reason,
        )


class LineTicketInvalid(Forbidden):
    """A line ticket that is not this customer's for this show (forged, or someone else's)."""

    code = "line_ticket_invalid"

    def __init__(self, show_id: str) -> None:
        super().__init__(
            "this line ticket is not yours for this show: poll without it to get yours",
            show_id=show_id,
        )


async def get_rooms(request: Request) -> WaitingRooms:
    """The replica's set of waiting-room shows."""
    rooms: WaitingRooms = request.app.state.waiting_rooms
    return rooms


RoomsDep = Annotated[WaitingRooms, Depends(get_rooms)]


def check_admission(
    rooms: WaitingRooms,
    admission_pass: str | None,
    *,
    show_id: str,
    user_id: str,
    now: datetime,
) -> None:
    """Refuse a hold of a waiting-room show without this customer's pass for it (403)."""
    if show_id not in rooms.shows:
        return
    if not rooms.secret:
        raise DatabaseUnavailable()
    reason = passes.check(rooms.secret, admission_pass, show_id=show_id, user_id=user_id, now=now)
    if reason:
        PASSES_REFUSED.labels(reason).inc()
        raise QueueRequired(show_id, reason)
