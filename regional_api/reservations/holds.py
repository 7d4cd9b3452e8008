"""Placing holds: seats by id or the best adjacent block, all or none, in one statement.

These run on a psycopg connection: the hot pool's, in autocommit, or in the transaction of a
counter sale. A hold with an Idempotency-Key (`Terms.key`) carries it in its claim statement
(`CLAIM_KEYED`), so it is one round trip too. A hold is answered as the `ReservationRead` it
becomes, built once from what the claim returns; a replay reads the reservation (`replay`).
"""

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from common.db import Conn, fetch, fetch_one
from common.ids import new_id, region_of
from regional_api.idempotency.service import Key, Stored, check_used
from regional_api.reservations import metrics
from regional_api.reservations import statements as sql
from regional_api.reservations.best_seats import SeatCell, choose_blocks
from regional_api.reservations.errors import (
    NoAdjacentSeats,
    SeatCapExceeded,
    SeatsTaken,
    ShowNotBookable,
    ShowNotFound,
    UnknownSeats,
)
from regional_api.reservations.full_shows import FullShows
from regional_api.reservations.queries import reservation_read, seat_read
from schemas.reservations import ReservationRead, ReservationSeatRead, ReservationStatus

log = logging.getLogger("reservations.holds")

# Best-available reads the seat map at most this often per request, and tries up to
# BEST_AVAILABLE_BLOCKS blocks of each map (none sharing a seat): the best first, then the next
# ones in groups of BEST_AVAILABLE_SPREAD tried in random order (`_spread`).
BEST_AVAILABLE_READS = 4
BEST_AVAILABLE_BLOCKS = 8
BEST_AVAILABLE_SPREAD = 4


@dataclass(frozen=True, slots=True)
class Terms:
    """Who holds, through which channel, when, for how long and under which cap."""

    user_id: str | None
    channel: str
    now: datetime
    ttl: timedelta
    cap: int | None = None  # seats of the show the customer may have (None: no cap)
    customer_email: str | None = None
    max_extensions: int = 0  # the extensions the new hold answers as left
    full: FullShows | None = None  # refuse seats it knows to be taken (online holds only)
    key: Key | None = None  # the Idempotency-Key the claim statement carries


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
    terms: Terms

    @property
    def deadline(self) -> datetime:
        return self.terms.now + self.terms.ttl

    def params(self) -> dict[str, Any]:
        terms = self.terms
        return {
            "cap": terms.cap,
            "rid": self.id,
            "show_id": self.show_id,
            "user_id": terms.user_id,
            "email": terms.customer_email,
            "channel": terms.channel,
            "deadline": self.deadline,
            "now": terms.now,
        }


def _draft(show_id: str, terms: Terms) -> _Draft:
    region = region_of(show_id)
    if region is None:
        raise ShowNotFound(show_id)
    return _Draft(new_id("res", region), show_id, terms)


Refusal = SeatsTaken | UnknownSeats | ShowNotFound | ShowNotBookable | SeatCapExceeded


async def _claim(
    conn: Conn, draft: _Draft, seat_ids: Sequence[int]
) -> tuple[_Show, list[ReservationSeatRead]] | Refusal:
    """Claim every seat and create the reservation, or say why not (and write nothing)."""
    params = draft.params() | {"seat_ids": list(seat_ids)}
    key = draft.terms.key
    if key is None:
        rows = await fetch(conn, sql.CLAIM, params)
    else:
        rows = await fetch(conn, sql.CLAIM_KEYED, params | key.params())
        check_used(rows[0] if rows else None)
    won = [r for r in rows if r.won]
    if won and len(won) == len(seat_ids):
        first = won[0]
        show = _Show(
            draft.show_id, first.cinema_id, first.currency.strip(), first.starts_at, first.title
        )
        return show, [seat_read(r) for r in won]
    if won:  # cannot happen (the rows were locked); never keep a partial claim
        raise SeatsTaken(sorted(r.label for r in won))
    return await _why_refused(conn, draft, seat_ids, rows)


async def _why_refused(
    conn: Conn, draft: _Draft, seat_ids: Sequence[int], rows: list[Any]
) -> Refusal:
    """Why a claim was refused: the show, unknown or taken seats, or the customer's cap.

    A refused claim answers its seats only for a scheduled show (migration 0012): with rows,
    the show needs no second read.
    """
    now, cap = draft.terms.now, draft.terms.cap
    if not rows:  # the show is not scheduled, or none of the seats is the show's
        try:
            _bookable(
                await fetch_one(conn, sql.SHOW, {"show_id": draft.show_id}), draft.show_id, now
            )
        except (ShowNotFound, ShowNotBookable) as refusal:
            return refusal
    elif rows[0].starts_at <= now:
        return ShowNotBookable(draft.show_id, "started")
    unknown = sorted(set(seat_ids) - {r.seat_id for r in rows})
    if unknown:
        return UnknownSeats(unknown)
    taken = sorted(r.label for r in rows if not r.free)
    if taken:
        return SeatsTaken(taken)
    if cap is not None:
        params = {"user_id": draft.terms.user_id, "show_id": draft.show_id, "now": now}
        active = int((await fetch_one(conn, sql.ACTIVE_SEATS, params)).active or 0)
        if active + len(seat_ids) > cap:
            return SeatCapExceeded(cap, active)
    return SeatsTaken([])  # every seat was free a moment ago: someone was faster


def _finish(
    draft: _Draft, show: _Show, seats: list[ReservationSeatRead], kind: str
) -> ReservationRead:
    """The new hold as the wire shows it, built from what the claim returned (no query)."""
    metrics.held(kind).inc()
    metrics.SEATS_HELD.inc(len(seats))
    terms = draft.terms
    return ReservationRead(
        id=draft.id,
        show_id=show.id,
        cinema_id=show.cinema_id,
        user_id=terms.user_id,
        channel=terms.channel,
        status=ReservationStatus.held,
        seats=seats,
        amount_minor=sum(seat.price_minor for seat in seats),
        currency=show.currency,
        refund_minor=None,
        hold_expires_at=draft.deadline,
        extensions_used=0,
        extensions_left=terms.max_extensions,
        created_at=terms.now,
        confirmed_at=None,
        canceled_at=None,
        show_starts_at=show.starts_at,
        movie_title=show.title,
    )


async def place_hold(
    conn: Conn, show_id: str, terms: Terms, seat_ids: Sequence[int]
) -> ReservationRead:
    """Hold all the given seats of a show for one new reservation, or none (SeatsTaken).

    With `terms.full`, seats it knows to be taken are refused without a statement.
    """
    seat_ids = sorted(set(seat_ids))
    full = terms.full
    taken = full.taken(show_id, seat_ids, terms.now) if full is not None else None
    if taken is not None:
        _refused_full("seats")
        raise SeatsTaken(taken)
    draft = _draft(show_id, terms)
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
) -> list[list[int]]:
    """The best free blocks from the show's seat map (`BEST_AVAILABLE_BLOCKS` at most), best
    first; remember a map that refuses for a while.

    With `full`, a map with no free seat, or with no block of `count` seats for a request of
    no particular type, is remembered with its free seats (see full_shows.py).
    """
    seen = full.version if full is not None else None
    rows = await fetch(conn, sql.SEAT_MAP, {"show_id": show.id, "now": now})
    cells = [SeatCell(r.seat_id, r.grid_row, r.grid_col, r.seat_type, r.free) for r in rows]
    blocks = choose_blocks(cells, count, seat_type, limit=BEST_AVAILABLE_BLOCKS)
    if full is None or blocks:
        return blocks
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
    return blocks


def _spread(blocks: list[list[int]]) -> list[list[int]]:
    """The blocks to try in turn: the best, then each `BEST_AVAILABLE_SPREAD` of the rest shuffled.

    A lone request gets the best block. Concurrent requests see the same map: after the best
    (refused at once to all but one of them), starting each at one of the next few blocks, not
    all at the next, keeps a burst of N requests from colliding N ways on every block.
    """
    order = blocks[:1]
    for start in range(1, len(blocks), BEST_AVAILABLE_SPREAD):
        group = blocks[start : start + BEST_AVAILABLE_SPREAD]
        random.shuffle(group)
        order += group
    return order


def _conflict(kind: str) -> None:
    metrics.HOLDS.labels("conflict", kind).inc()
    metrics.CONFLICTS.inc()


def _refused_full(kind: str) -> None:
    _conflict(kind)
    metrics.HOLDS_REFUSED_FULL.labels(kind).inc()


async def place_best_available(
    conn: Conn, show_id: str, terms: Terms, count: int, seat_type: str | None
) -> ReservationRead:
    """Hold one of the best blocks of `count` adjacent free seats (another if someone was faster).

    A claim that meets a seat another claim is taking is refused at once (migration 0012), and
    the next block is tried, then the map is read again: the answer is `NoAdjacentSeats` only
    when the map has no block left, or after `BEST_AVAILABLE_READS` maps' blocks were all
    refused. With `terms.full`, a seat map without a free seat, or without such a block, is
    remembered, and a request it answers is refused without a statement.
    """
    full, now = terms.full, terms.now
    if full is not None and (
        full.lacks_block(show_id, count, now) if seat_type is None else full.is_full(show_id, now)
    ):
        _refused_full("best_available")
        raise NoAdjacentSeats(count, seat_type)
    draft = _draft(show_id, terms)
    show = await _read_show(conn, show_id=show_id, now=now)
    for _ in range(BEST_AVAILABLE_READS):
        blocks = await _choose(
            conn, show=show, now=now, count=count, seat_type=seat_type, full=full
        )
        if not blocks:
            break
        for block in _spread(blocks):  # no two share a seat: a refusal says nothing of the next
            claimed = await _claim(conn, draft, block)  # a refused attempt writes nothing
            if isinstance(claimed, tuple):
                if full is not None:
                    full.changed(show_id)
                return _finish(draft, *claimed, "best_available")
            if not isinstance(claimed, SeatsTaken):
                raise claimed
    _conflict("best_available")
    raise NoAdjacentSeats(count, seat_type)


async def replay(conn: Conn, stored: Stored, terms: Terms) -> ReservationRead | None:
    """The hold a used key made, read as it stands now (None: its answer was stored whole)."""
    reservation_id = stored.made("reservation_id")
    if reservation_id is None:
        return None
    return await reservation_read(
        conn, reservation_id, now=terms.now, max_extensions=terms.max_extensions
    )
