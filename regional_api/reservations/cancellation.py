"""Canceling reservations and whole shows, with refunds of what was paid."""

import importlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch, fetch_one, run, session_connection
from common.errors import Conflict
from regional_api.reservations.errors import (
    CancelTooLate,
    InvalidReservationState,
    ShowNotFound,
)
from regional_api.reservations.full_shows import FullShows, forget_on_commit
from regional_api.reservations.models import Reservation
from regional_api.reservations.service import cancel_reservation, lock_show_for_cancel

log = logging.getLogger("reservations.cancel")

# Where the payments feature keeps `refund_reservation(session, *, reservation, now, reason)`.
_REFUND_MODULES = ("regional_api.payments.service", "regional_api.payments.refunds")

_SHOW_START = "SELECT starts_at FROM shows WHERE id = %(id)s"
_LOCK_SHOW_STATUS = "SELECT status FROM shows WHERE id = %(id)s FOR UPDATE"
_CANCEL_SHOW = "UPDATE shows SET status = 'canceled', canceled_at = %(now)s WHERE id = %(id)s"
_LIVE_RESERVATIONS = (
    "SELECT id FROM reservations WHERE show_id = %(id)s"
    " AND status IN ('held', 'confirmed') ORDER BY id"
)


def _refund_function() -> Any:
    for name in _REFUND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        refund = getattr(module, "refund_reservation", None)
        if refund is not None:
            return refund
    return None


async def refund(
    session: AsyncSession, reservation: Reservation, *, now: datetime, reason: str
) -> int:
    """Refund a canceled reservation's completed payment; return the amount refunded."""
    refund_reservation = _refund_function()
    if refund_reservation is None:
        return 0
    row = await refund_reservation(session, reservation=reservation, now=now, reason=reason)
    return int(row.amount_minor) if row is not None else 0


def check_customer_cancel(
    reservation: Reservation, *, show_starts_at: datetime, now: datetime, cutoff_minutes: int
) -> None:
    """Customers cancel only confirmed reservations, and only before the cut-off."""
    if reservation.status != "confirmed":
        raise InvalidReservationState(reservation.id, reservation.status, "cancel (use release)")
    if now > show_starts_at - timedelta(minutes=cutoff_minutes):
        raise CancelTooLate(cutoff_minutes)


async def show_start(session: AsyncSession, show_id: str) -> datetime:
    """When a show starts."""
    row = await fetch_one(await session_connection(session), _SHOW_START, {"id": show_id})
    if row is None:
        raise ShowNotFound(show_id)
    starts_at: datetime = row.starts_at
    return starts_at


async def cancel_and_refund(
    session: AsyncSession,
    *,
    reservation_id: str,
    now: datetime,
    reason: str,
    note: str = "",
    full: FullShows | None = None,
) -> Reservation:
    """Cancel a reservation, free its seats and refund it if it was paid (`reason`: who)."""
    reservation = await cancel_reservation(
        session, reservation_id=reservation_id, now=now, reason=reason, full=full
    )
    await refund(session, reservation, now=now, reason=note or f"canceled by {reason}")
    return reservation


@dataclass(frozen=True, slots=True)
class ShowCancellation:
    """What canceling a show did."""

    show_id: str
    canceled_reservations: int
    refunded_reservations: int
    refunded_minor: int


async def cancel_show(
    session: AsyncSession,
    *,
    show_id: str,
    now: datetime,
    reason: str,
    full: FullShows | None = None,
) -> ShowCancellation:
    """Cancel a show: every held or confirmed reservation is canceled, freed and refunded.

    With `full`, the show's full-show hint is forgotten on commit: holds then meet the
    cancellation (409 show_not_bookable) instead of the hint's seats_taken.
    """
    await lock_show_for_cancel(session, show_id=show_id)
    conn = await session_connection(session)
    show = await fetch_one(conn, _LOCK_SHOW_STATUS, {"id": show_id})
    if show is None:
        raise ShowNotFound(show_id)
    if show.status == "canceled":
        raise Conflict("show is already canceled", code="show_already_canceled", show_id=show_id)
    await run(conn, _CANCEL_SHOW, {"id": show_id, "now": now})
    forget_on_commit(session, full, show_id)
    ids = [row.id for row in await fetch(conn, _LIVE_RESERVATIONS, {"id": show_id})]
    refunded = refunded_minor = 0
    for reservation_id in ids:
        reservation = await cancel_reservation(
            session, reservation_id=reservation_id, now=now, reason="show_canceled", full=full
        )
        amount = await refund(session, reservation, now=now, reason=reason or "show canceled")
        refunded += amount > 0
        refunded_minor += amount
    log.info(
        "show canceled",
        extra={"fields": {"show_id": show_id, "reservations": len(ids), "refunded": refunded}},
    )
    return ShowCancellation(show_id, len(ids), refunded, refunded_minor)
