"""Ticket check-in at the door: one atomic conditional update, then a diagnosis when refused."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch_one, session_connection
from common.errors import Conflict, NotFound
from regional_api.payments.metrics import TICKETS_VALIDATED

log = logging.getLogger("boxoffice.tickets")


@dataclass(frozen=True)
class CheckIn:
    """A ticket that was just checked in."""

    code: str
    reservation_id: str
    show_id: str
    seat_id: int
    seat_label: str
    seat_type: str
    starts_at: datetime
    checked_in_at: datetime


# Doors open this long before a show; a ticket is refused once its show has ended.
DOORS_OPEN_BEFORE = timedelta(hours=1)

# A ticket is used at most once: the update only matches an unused ticket of a confirmed
# reservation of a scheduled show in this cinema whose doors are open, so two scanners racing
# cannot both win.
_CHECK_IN = """
    UPDATE reservation_seats rs SET checked_in_at = %(now)s
    FROM reservations r, shows sh, seats s
    WHERE rs.ticket_code = %(code)s AND rs.checked_in_at IS NULL
      AND r.id = rs.reservation_id AND r.status = 'confirmed'
      AND sh.id = rs.show_id AND sh.cinema_id = %(cinema_id)s AND sh.status = 'scheduled'
      AND (CAST(%(show_id)s AS text) IS NULL OR rs.show_id = %(show_id)s)
      AND sh.starts_at - %(doors_open)s <= %(now)s AND %(now)s < sh.ends_at
      AND s.id = rs.seat_id
    RETURNING rs.ticket_code AS code, rs.reservation_id, rs.show_id, rs.seat_id,
              s.label AS seat_label, rs.seat_type, sh.starts_at, rs.checked_in_at
    """

_DIAGNOSE = """
    SELECT rs.checked_in_at, rs.show_id, r.status, sh.cinema_id, sh.status AS show_status,
           sh.starts_at, sh.ends_at
    FROM reservation_seats rs
    JOIN reservations r ON r.id = rs.reservation_id
    JOIN shows sh ON sh.id = rs.show_id
    WHERE rs.ticket_code = %(code)s
    """


async def check_in_ticket(
    session: AsyncSession, *, cinema_id: str, code: str, show_id: str | None, now: datetime
) -> CheckIn:
    """Mark a ticket used; raise a precise 404/409 when it is unknown or not valid here."""
    params = {
        "code": code,
        "cinema_id": cinema_id,
        "show_id": show_id,
        "now": now,
        "doors_open": DOORS_OPEN_BEFORE,
    }
    row = await fetch_one(await session_connection(session), _CHECK_IN, params)
    if row is not None:
        TICKETS_VALIDATED.labels("valid").inc()
        log.info("ticket checked in", extra={"fields": {"show_id": row.show_id}})
        return CheckIn(**row._asdict())
    error = await _refusal(session, cinema_id=cinema_id, code=code, show_id=show_id, now=now)
    TICKETS_VALIDATED.labels(error.code).inc()
    raise error


async def _refusal(
    session: AsyncSession, *, cinema_id: str, code: str, show_id: str | None, now: datetime
) -> NotFound | Conflict:
    found = await fetch_one(await session_connection(session), _DIAGNOSE, {"code": code})
    if found is None:
        return NotFound("no ticket with this code", code="ticket_not_found")
    if found.cinema_id != cinema_id:
        return Conflict("the ticket is for another cinema", code="wrong_cinema")
    if found.status != "confirmed" or found.show_status != "scheduled":
        return Conflict("the ticket was canceled", code="ticket_canceled")
    if show_id is not None and found.show_id != show_id:
        return Conflict(
            "the ticket is for another show", code="wrong_show", ticket_show_id=found.show_id
        )
    if found.checked_in_at is not None:
        return Conflict(
            "the ticket was already used",
            code="ticket_already_used",
            used_at=found.checked_in_at.isoformat(),
        )
    if now < found.starts_at - DOORS_OPEN_BEFORE:
        return Conflict(
            "doors are not open yet for this ticket's show",
            code="too_early",
            starts_at=found.starts_at.isoformat(),
        )
    if now >= found.ends_at:
        return Conflict("the ticket's show is over", code="show_over")
    return Conflict("the ticket cannot be checked in", code="ticket_not_valid")
