"""Release, extension, cancellation and expiry of reservations.

Each seat change is one statement of statements.py that locks the reservation's `show_seats`
rows in seat order and touches only those rows: release and cancellation free them, extension
moves their deadline, expiry frees lapsed holds. Placing holds lives in holds.py, paying (which
sells the seats and confirms) in payments/.
"""

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch, run, session_connection
from regional_api.reservations import metrics
from regional_api.reservations import statements as sql
from regional_api.reservations.errors import (
    ExtensionRefused,
    InvalidReservationState,
    ReservationNotFound,
)
from regional_api.reservations.full_shows import FullShows, forget_on_commit
from regional_api.reservations.models import Reservation

log = logging.getLogger("reservations")


async def _load(session: AsyncSession, reservation_id: str, *, lock: bool) -> Reservation:
    query = select(Reservation).where(Reservation.id == reservation_id)
    if lock:
        query = query.with_for_update()
    result = await session.execute(query.execution_options(populate_existing=True))
    reservation = result.scalar_one_or_none()
    if reservation is None:
        raise ReservationNotFound(reservation_id)
    return reservation


async def _free_seats(
    session: AsyncSession, reservation: Reservation, full: FullShows | None
) -> None:
    params = {"show_id": reservation.show_id, "rid": reservation.id}
    await run(await session_connection(session), sql.FREE, params)
    forget_on_commit(session, full, reservation.show_id)


async def release_hold(
    session: AsyncSession, *, reservation_id: str, now: datetime, full: FullShows | None = None
) -> Reservation:
    """Give a held reservation's seats back at once (a lapsed hold is marked expired)."""
    reservation = await _load(session, reservation_id, lock=True)
    if reservation.status != "held":
        raise InvalidReservationState(reservation_id, reservation.status, "release")
    await _free_seats(session, reservation, full)
    lapsed = reservation.hold_expires_at is not None and reservation.hold_expires_at <= now
    if lapsed:
        reservation.status = "expired"
        metrics.EXPIRIES.labels("release").inc()
    else:
        reservation.status = "canceled"
        reservation.canceled_at = now
        metrics.RELEASES.inc()
    await session.flush()
    return reservation


async def extend_hold(
    session: AsyncSession,
    *,
    reservation_id: str,
    now: datetime,
    extension: timedelta,
    max_extensions: int,
    cap: timedelta,
) -> Reservation:
    """Push a live hold's deadline back, a bounded number of times and never past the cap."""
    reservation = await _load(session, reservation_id, lock=True)
    deadline = reservation.hold_expires_at
    reason = None
    if reservation.status != "held" or deadline is None:
        reason = f"reservation is {reservation.status}"
    elif deadline <= now:
        reason = "hold expired"
    elif reservation.extensions >= max_extensions:
        reason = "no extensions left"
    if reason is None and deadline is not None:
        new_deadline = min(deadline + extension, reservation.created_at + cap)
        if new_deadline <= deadline:
            reason = "hold reached its maximum length"
    if reason is not None or deadline is None:
        metrics.EXTENSIONS.labels("refused").inc()
        raise ExtensionRefused(reservation_id, reason or "not held")
    params = {"show_id": reservation.show_id, "rid": reservation_id, "deadline": new_deadline}
    await run(await session_connection(session), sql.MOVE_DEADLINE, params)
    reservation.hold_expires_at = new_deadline
    reservation.extensions += 1
    await session.flush()
    metrics.EXTENSIONS.labels("ok").inc()
    return reservation


async def cancel_reservation(
    session: AsyncSession,
    *,
    reservation_id: str,
    now: datetime,
    reason: str,
    full: FullShows | None = None,
) -> Reservation:
    """Cancel a held or confirmed reservation and free its seats at once (refunds are separate)."""
    reservation = await _load(session, reservation_id, lock=True)
    if reservation.status not in ("held", "confirmed"):
        raise InvalidReservationState(reservation_id, reservation.status, "cancel")
    await _free_seats(session, reservation, full)
    reservation.status = "canceled"
    reservation.canceled_at = now
    reservation.hold_expires_at = None
    await session.flush()
    metrics.CANCELLATIONS.labels(reason).inc()
    log.info(
        "reservation canceled",
        extra={"fields": {"reservation_id": reservation_id, "reason": reason}},
    )
    return reservation


async def expire_lapsed_holds(
    session: AsyncSession, *, now: datetime, limit: int, full: FullShows | None = None
) -> int:
    """Mark up to `limit` lapsed holds expired and free the seats they still hold."""
    conn = await session_connection(session)
    lapsed = await fetch(conn, sql.EXPIRE, {"now": now, "limit": limit})
    ids = [row.id for row in lapsed]
    if ids:
        await run(conn, sql.FREE_LAPSED, {"ids": ids, "now": now})
        metrics.EXPIRIES.labels("sweeper").inc(len(ids))
    # A hint never outlives a hold's deadline, so this only tidies: the seats were free already.
    for show_id in {row.show_id for row in lapsed}:
        forget_on_commit(session, full, show_id)
    return len(ids)


async def lock_show_for_cancel(session: AsyncSession, *, show_id: str) -> None:
    """Wait for in-flight holds of the show to finish and keep new ones out until commit."""
    await run(await session_connection(session), sql.LOCK_SHOW_EXCLUSIVE, {"show_id": show_id})
