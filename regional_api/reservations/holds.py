"""Placing holds: seats by id or the best adjacent block, all or none, in one statement.

These run on a psycopg connection (the request's, or a session's via `session_connection`).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from common.db import Conn, fetch, fetch_one
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
from regional_api.reservations.full_shows import FullShows

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
    """A new hold: the reservation row written, its seats, and the show it is for."""

    id: str
    show_id: str
    cinema_id: str
    user_id: str | None
    customer_email: str | None
    channel: str
    hold_expires_at: datetime
    amount_minor: int
    currency: str
    created_at: datetime
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


def _bookable(row: Any, show_id: str, now: datetime) -> _Show:
    """The show of a `SHOW` row, or why it cannot be booked."""
    if row is None:
        raise ShowNotFound(show_id)
    if row.status != "scheduled":
        raise ShowNotBookable(show_id, "canceled")
    if row.starts_at <= now:
        raise ShowNotBookable(show_id, "started")
    return _Show(show_id, row.cinema_id, row.currency.strip(), row.starts_at, row.title)


async def _read_show(conn: Conn, *, show_id: str, now: datetime) -> _Show:
    """The show, if it can be booked (the claim checks again under the show's lock)."""
    return _bookable(await fetch_one(conn, sql.SHOW, {"show_id": show_id}), show_id, now)


@dataclass(frozen=True, slots=True)
class _Draft:
    """The reservation a hold is about to create."""

    id: str
    show_id: str
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
            "show_id": self.show_id,
            "user_id": self.user_id,
            "email": self.customer_email,
            "channel": self.channel,
            "deadline": self.deadline,
            "now": self.now,
        }


def _draft(
    show_id: str,
    *,
    user_id: str | None,
    customer_email: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    cap: int | None,
) -> _Draft:
    region = region_of(show_id)
    if region is None:
        raise ShowNotFound(show_id)
    reservation_id = new_id("res", region)
    return _Draft(reservation_id, show_id, user_id, customer_email, channel, now, now + ttl, cap)


Refusal = SeatsTaken | UnknownSeats | ShowNotFound | ShowNotBookable | SeatCapExceeded


async def _claim(
    conn: Conn, draft: _Draft, seat_ids: Sequence[int]
) -> tuple[_Show, list[HeldSeat]] | Refusal:
    """Claim every seat and create the reservation, or say why not (and write nothing)."""
    params = draft.params() | {"seat_ids": list(seat_ids)}
    rows = await fetch(conn, sql.CLAIM, params)
    won = [r for r in rows if r.won]
    if won and len(won) == len(seat_ids):
        first = won[0]
        show = _Show(
            draft.show_id, first.cinema_id, first.currency.strip(), first.starts_at, first.title
        )
        seats = [
            HeldSeat(r.seat_id, r.label, r.row_label, r.number, r.seat_type, r.price_minor)
            for r in won
        ]
        return show, seats
    if won:  # cannot happen (the rows were locked); never keep a partial claim
        raise SeatsTaken(sorted(r.label for r in won))
    return await _why_refused(conn, draft, seat_ids, rows)


async def _why_refused(
    conn: Conn, draft: _Draft, seat_ids: Sequence[int], rows: list[Any]
) -> Refusal:
    """Why a claim was refused: the show, unknown or taken seats, or the customer's cap."""
    try:
        _bookable(
            await fetch_one(conn, sql.SHOW, {"show_id": draft.show_id}), draft.show_id, draft.now
        )
    except (ShowNotFound, ShowNotBookable) as refusal:
        return refusal
    unknown = sorted(set(seat_ids) - {r.seat_id for r in rows})
    if unknown:
        return UnknownSeats(unknown)
    taken = sorted(r.label for r in rows if not r.free)
    if taken:
        return SeatsTaken(taken)
    if draft.cap is not None:
        params = {"user_id": draft.user_id, "show_id": draft.show_id, "now": draft.now}
        active = int((await fetch_one(conn, sql.ACTIVE_SEATS, params)).active or 0)
        if active + len(seat_ids) > draft.cap:
            return SeatCapExceeded(draft.cap, active)
    return SeatsTaken([])  # every seat was free a moment ago: someone was faster


def _finish(draft: _Draft, show: _Show, seats: list[HeldSeat], kind: str) -> Hold:
    metrics.HOLDS.labels("ok", kind).inc()
    metrics.SEATS_HELD.inc(len(seats))
    amount = sum(seat.price_minor for seat in seats)
    return Hold(
        id=draft.id,
        show_id=show.id,
        cinema_id=show.cinema_id,
        user_id=draft.user_id,
        customer_email=draft.customer_email,
        channel=draft.channel,
        hold_expires_at=draft.deadline,
        amount_minor=amount,
        currency=show.currency,
        created_at=draft.now,
        seats=seats,
        show_starts_at=show.starts_at,
        movie_title=show.title,
    )


async def place_hold(
    conn: Conn,
    *,
    show_id: str,
    seat_ids: Sequence[int],
    user_id: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    max_per_customer: int | None = None,
    customer_email: str | None = None,
    full: FullShows | None = None,
) -> Hold:
    """Hold all the given seats of a show for one new reservation, or none (SeatsTaken).

    With `full`, seats it knows to be taken are refused without a statement.
    """
    seat_ids = sorted(set(seat_ids))
    taken = full.taken(show_id, seat_ids, now) if full is not None else None
    if taken is not None:
        _refused_full("seats")
        raise SeatsTaken(taken)
    draft = _draft(
        show_id,
        user_id=user_id,
        customer_email=customer_email,
        channel=channel,
        now=now,
        ttl=ttl,
        cap=max_per_customer,
    )
    claimed = await _claim(conn, draft, seat_ids)
    if isinstance(claimed, SeatsTaken):
        _conflict("seats")
    if not isinstance(claimed, tuple):
        raise claimed
    show, seats = claimed
    if full is not None:
        full.changed(show_id)
    return _finish(draft, show, seats, "seats")


async def _choose(
    conn: Conn,
    *,
    show: _Show,
    now: datetime,
    count: int,
    seat_type: str | None,
    full: FullShows | None,
) -> list[int] | None:
    """The best free block from the show's seat map; remember a map that refuses for a while.

    With `full`, a map with no free seat, or with no block of `count` seats for a request of
    no particular type, is remembered with its free seats (see full_shows.py).
    """
    seen = full.version if full is not None else None
    rows = await fetch(conn, sql.SEAT_MAP, {"show_id": show.id, "now": now})
    cells = [SeatCell(r.seat_id, r.grid_row, r.grid_col, r.seat_type, r.free) for r in rows]
    block = choose_block(cells, count, seat_type)
    if full is None or block is not None:
        return block
    free = frozenset(cell.seat_id for cell in cells if cell.free)
    if seat_type is None or not free:
        # A held seat frees itself at its deadline: the first one still ahead (or the show's
        # start) is when the map may change without an event this process sees.
        deadlines = [r.held_until for r in rows if r.held_until is not None and r.held_until > now]
        full.mark(
            show.id,
            now=now,
            until=min([*deadlines, show.starts_at]),
            labels={r.seat_id: r.label for r in rows},
            free=free,
            no_block_from=count if seat_type is None else None,
            seen=seen,
        )
    return block


def _conflict(kind: str) -> None:
    metrics.HOLDS.labels("conflict", kind).inc()
    metrics.CONFLICTS.inc()


def _refused_full(kind: str) -> None:
    _conflict(kind)
    metrics.HOLDS_REFUSED_FULL.labels(kind).inc()


async def place_best_available(
    conn: Conn,
    *,
    show_id: str,
    count: int,
    seat_type: str | None,
    user_id: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    max_per_customer: int | None = None,
    full: FullShows | None = None,
) -> Hold:
    """Hold the best block of `count` adjacent free seats (retrying if someone was faster).

    With `full`, a seat map without a free seat, or without such a block, is remembered, and
    a request it answers is refused without a statement.
    """
    if full is not None and (
        full.lacks_block(show_id, count, now) if seat_type is None else full.is_full(show_id, now)
    ):
        _refused_full("best_available")
        raise NoAdjacentSeats(count, seat_type)
    draft = _draft(
        show_id,
        user_id=user_id,
        customer_email=None,
        channel=channel,
        now=now,
        ttl=ttl,
        cap=max_per_customer,
    )
    show = await _read_show(conn, show_id=show_id, now=now)
    for _ in range(BEST_AVAILABLE_ATTEMPTS):
        block = await _choose(conn, show=show, now=now, count=count, seat_type=seat_type, full=full)
        if block is None:
            break
        claimed = await _claim(conn, draft, block)  # a refused attempt writes nothing
        if isinstance(claimed, tuple):
            if full is not None:
                full.changed(show_id)
            return _finish(draft, *claimed, "best_available")
        if not isinstance(claimed, SeatsTaken):
            raise claimed
    _conflict("best_available")
    raise NoAdjacentSeats(count, seat_type)
