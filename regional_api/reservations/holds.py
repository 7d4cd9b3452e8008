"""Placing holds: seats by id or the best adjacent block, all or none, in one statement."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from common.ids import new_id, region_of
from regional_api.reservations import metrics
from regional_api.reservations import statements as sql
from regional_api.reservations.best_seats import SeatCell, choose_block
from regional_api.reservations.errors import (
    NoAdjacentSeats,
    SeatCapExceeded,
    SeatsTaken,
    ShowNotBookable,
    ShowNotFound,
    UnknownSeats,
)
from regional_api.reservations.models import Reservation

log = logging.getLogger("reservations.holds")

BEST_AVAILABLE_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class HeldSeat:
    """A seat of a new hold, with its label and the price it was held at."""

    seat_id: int
    label: str
    row_label: str
    number: int
    seat_type: str
    price_minor: int


@dataclass(frozen=True, slots=True)
class Hold:
    """A new hold: the reservation, its seats, and the show it is for."""

    reservation: Reservation
    seats: list[HeldSeat]
    show_starts_at: datetime
    movie_title: str


@dataclass(frozen=True, slots=True)
class _Show:
    """What a hold needs to know about its show, read under the show's shared lock."""

    id: str
    cinema_id: str
    currency: str
    starts_at: datetime
    title: str


async def _open_hold(
    session: AsyncSession, *, show_id: str, user_id: str | None, now: datetime, capped: bool
) -> _Show:
    """Take the show's shared lock (and the customer's lock if capped) and read the show."""
    if region_of(show_id) is None:
        raise ShowNotFound(show_id)
    query = sql.LOCKED_SHOW_AND_CUSTOMER if capped and user_id else sql.LOCKED_SHOW
    params = {"show_id": show_id, "user_id": user_id}
    row = (await session.execute(query, params)).one_or_none()
    if row is None:
        raise ShowNotFound(show_id)
    if row.status != "scheduled":
        raise ShowNotBookable(show_id, "canceled")
    if row.starts_at <= now:
        raise ShowNotBookable(show_id, "started")
    return _Show(show_id, row.cinema_id, row.currency.strip(), row.starts_at, row.title)


@dataclass(frozen=True, slots=True)
class _Draft:
    """The reservation a hold is about to create."""

    id: str
    show: _Show
    user_id: str | None
    customer_email: str | None
    channel: str
    now: datetime
    deadline: datetime
    cap: int | None

    def params(self) -> dict[str, Any]:
        return {
            "cap": self.cap,
            "rid": self.id,
            "show_id": self.show.id,
            "cinema_id": self.show.cinema_id,
            "user_id": self.user_id,
            "email": self.customer_email,
            "channel": self.channel,
            "deadline": self.deadline,
            "currency": self.show.currency,
            "now": self.now,
        }

    def reservation(self, seats: list[HeldSeat]) -> Reservation:
        """The ORM object of the row the claim wrote, attached without another query."""
        reservation = Reservation(
            id=self.id,
            show_id=self.show.id,
            cinema_id=self.show.cinema_id,
            user_id=self.user_id,
            customer_email=self.customer_email,
            channel=self.channel,
            status="held",
            hold_expires_at=self.deadline,
            extensions=0,
            amount_minor=sum(seat.price_minor for seat in seats),
            currency=self.show.currency,
            refund_minor=None,
            created_at=self.now,
            confirmed_at=None,
            canceled_at=None,
        )
        make_transient_to_detached(reservation)
        return reservation


def _draft(
    show: _Show,
    *,
    user_id: str | None,
    customer_email: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    cap: int | None,
) -> _Draft:
    region = region_of(show.id) or ""
    return _Draft(
        new_id("res", region), show, user_id, customer_email, channel, now, now + ttl, cap
    )


async def _claim(
    session: AsyncSession, draft: _Draft, seat_ids: Sequence[int], *, new: bool
) -> list[HeldSeat] | SeatsTaken | UnknownSeats | ShowNotBookable | SeatCapExceeded:
    """Claim every seat for the reservation (creating it if `new`), or say why not."""
    params = draft.params() | {"seat_ids": list(seat_ids), "n": len(seat_ids)}
    rows = (await session.execute(sql.CLAIM_NEW if new else sql.CLAIM_MORE, params)).all()
    won = [r for r in rows if r.won]
    if won and len(won) == len(seat_ids):
        return [
            HeldSeat(r.seat_id, r.label, r.row_label, r.number, r.seat_type, r.price_minor)
            for r in won
        ]
    if won:  # cannot happen (the rows were locked); never keep a partial claim
        raise SeatsTaken(sorted(r.label for r in won))
    unknown = sorted(set(seat_ids) - {r.seat_id for r in rows})
    if unknown:
        return UnknownSeats(unknown)
    taken = sorted(r.label for r in rows if not r.free)
    if taken:
        return SeatsTaken(taken)
    return await _why_refused(session, draft, len(seat_ids))


async def _why_refused(
    session: AsyncSession, draft: _Draft, count: int
) -> SeatsTaken | ShowNotBookable | SeatCapExceeded:
    """Every seat was free, yet the claim was refused: the show or the cap changed meanwhile."""
    status = await session.scalar(
        text("SELECT status FROM shows WHERE id = :id"), {"id": draft.show.id}
    )
    if status != "scheduled":
        return ShowNotBookable(draft.show.id, "canceled")
    if draft.cap is not None:
        params = {"user_id": draft.user_id, "show_id": draft.show.id, "now": draft.now}
        active = int(await session.scalar(sql.ACTIVE_SEATS, params) or 0)
        if active + count > draft.cap:
            return SeatCapExceeded(draft.cap, active)
    return SeatsTaken([])


def _finish(session: AsyncSession, draft: _Draft, seats: list[HeldSeat], kind: str) -> Hold:
    reservation = draft.reservation(seats)
    session.add(reservation)
    metrics.HOLDS.labels("ok", kind).inc()
    metrics.SEATS_HELD.inc(len(seats))
    return Hold(reservation, seats, draft.show.starts_at, draft.show.title)


async def place_hold(
    session: AsyncSession,
    *,
    show_id: str,
    seat_ids: Sequence[int],
    user_id: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    max_per_customer: int | None = None,
    customer_email: str | None = None,
) -> Hold:
    """Hold all the given seats of a show for one new reservation, or none (SeatsTaken)."""
    seat_ids = sorted(set(seat_ids))
    capped = max_per_customer is not None
    show = await _open_hold(session, show_id=show_id, user_id=user_id, now=now, capped=capped)
    draft = _draft(
        show,
        user_id=user_id,
        customer_email=customer_email,
        channel=channel,
        now=now,
        ttl=ttl,
        cap=max_per_customer,
    )
    claimed = await _claim(session, draft, seat_ids, new=True)
    if isinstance(claimed, SeatsTaken):
        metrics.HOLDS.labels("conflict", "seats").inc()
        metrics.CONFLICTS.inc()
    if not isinstance(claimed, list):
        raise claimed
    return _finish(session, draft, claimed, "seats")


async def hold_seats(
    session: AsyncSession,
    *,
    show_id: str,
    seat_ids: Sequence[int],
    user_id: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    max_per_customer: int | None = None,
    customer_email: str | None = None,
) -> Reservation:
    """Hold all the given seats of a show for one reservation, or none (SeatsTaken)."""
    hold = await place_hold(
        session,
        show_id=show_id,
        seat_ids=seat_ids,
        user_id=user_id,
        channel=channel,
        now=now,
        ttl=ttl,
        max_per_customer=max_per_customer,
        customer_email=customer_email,
    )
    return hold.reservation


async def _seat_map(session: AsyncSession, *, show_id: str, now: datetime) -> list[SeatCell]:
    rows = await session.execute(sql.SEAT_MAP, {"show_id": show_id, "now": now})
    return [SeatCell(r.seat_id, r.grid_row, r.grid_col, r.seat_type, r.free) for r in rows]


async def place_best_available(
    session: AsyncSession,
    *,
    show_id: str,
    count: int,
    seat_type: str | None,
    user_id: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    max_per_customer: int | None = None,
) -> Hold:
    """Hold the best block of `count` adjacent free seats (retrying if someone was faster)."""
    capped = max_per_customer is not None
    show = await _open_hold(session, show_id=show_id, user_id=user_id, now=now, capped=capped)
    draft = _draft(
        show,
        user_id=user_id,
        customer_email=None,
        channel=channel,
        now=now,
        ttl=ttl,
        cap=max_per_customer,
    )
    await session.execute(sql.INSERT_RESERVATION, draft.params())
    for _ in range(BEST_AVAILABLE_ATTEMPTS):
        block = choose_block(await _seat_map(session, show_id=show_id, now=now), count, seat_type)
        if block is None:
            break
        claimed = await _claim(session, draft, block, new=False)
        if isinstance(claimed, list):
            return _finish(session, draft, claimed, "best_available")
        if isinstance(claimed, ShowNotBookable | SeatCapExceeded):
            raise claimed
    # Drop the empty reservation even if the caller catches the error and goes on.
    await session.execute(text("DELETE FROM reservations WHERE id = :rid"), {"rid": draft.id})
    metrics.HOLDS.labels("conflict", "best_available").inc()
    metrics.CONFLICTS.inc()
    raise NoAdjacentSeats(count, seat_type)
