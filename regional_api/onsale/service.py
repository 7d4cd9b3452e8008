"""On-sales: announce them, join their line, and tell a customer where they stand."""

from datetime import datetime
from typing import Any

from common.db import Conn, fetch, fetch_one, run
from regional_api.onsale import passes
from regional_api.onsale import statements as sql
from regional_api.onsale.admitter import OPENING_SECONDS
from regional_api.onsale.batches import JoinBatches
from regional_api.onsale.rooms import Line
from regional_api.reservations.errors import ShowNotFound
from schemas.onsale import LineState, LineStatus, OnSaleRead, OnSaleSet

MIN_RATE = 0.1  # per second, so a stalled line still shows a (long) estimate
# When a waiting customer is told to ask again: at least every 10 s, every 5 s once the sale
# is open; near the front every 0.5 s; everyone every second once the seats may all go within
# about two seconds (the counters are read every 0.5 s, so sold out reaches everyone within
# about 2 s of the last sale).
POLL_FRONT_SECONDS = 0.5
POLL_MIN_SECONDS = 1.0
POLL_MAX_SECONDS = 10.0
POLL_OPEN_MAX_SECONDS = 5.0
# Half the time the unsold seats may last at the rate they go now: an opening's rate still
# rises (it doubled and more within seconds in `benchmarks/onsale_line.py`).
HORIZON_SHARE = 0.5
POLL_UNKNOWN_SECONDS = 3.0  # open, but no seat has gone yet


async def set_onsale(conn: Conn, *, show_id: str, body: OnSaleSet, now: datetime) -> bool:
    """Announce or change a show's on-sale (the opening is fixed once the line is ranked)."""
    params = {
        "show_id": show_id,
        "opens_at": body.opens_at,
        "waiting_room": body.waiting_room,
        "window_seconds": body.window_minutes * 60,
        "rate": body.max_admit_per_second,
        "now": now,
    }
    return await fetch_one(conn, sql.SET_ONSALE, params) is not None


async def movie_shows(conn: Conn, *, movie_id: str, now: datetime) -> list[str]:
    """The upcoming scheduled shows of a movie."""
    rows = await fetch(conn, sql.MOVIE_SHOWS, {"movie_id": movie_id, "now": now})
    return [row.id for row in rows]


async def drop_onsale(conn: Conn, *, show_id: str) -> None:
    """End a show's on-sale and its line (nothing to do if it has none)."""
    await run(conn, sql.DROP_ONSALE, {"show_id": show_id})


async def read_onsale(conn: Conn, *, show_id: str, now: datetime) -> OnSaleRead:
    """A show's on-sale and its line's live figures (`opens_at` None: it has none)."""
    row = await fetch_one(conn, sql.ONSALE, {"show_id": show_id, "now": now})
    if row is None:
        raise ShowNotFound(show_id)
    return OnSaleRead(
        show_id=show_id,
        opens_at=row.opens_at,
        waiting_room=row.waiting_room,
        window_minutes=row.window_seconds // 60,
        max_admit_per_second=row.max_admit_per_second,
        line_length=_waiting(row),
        admitted=row.admitted_through,
        admit_rate=round(float(row.admit_rate), 2),
        sold=row.sold,
        free=row.free,
        sold_out=row.sold_out_at is not None,
    )


def _waiting(row: Any) -> int:
    return int(row.next_rank - row.admitted_through if row.shuffled else row.early_count)


async def join(
    joins: JoinBatches,
    *,
    show_id: str,
    user_id: str,
    now: datetime,
    secret: bytes,
    line: Line | None,
) -> LineStatus:
    """Join a show's line once (a customer whose window is over joins at the end again).

    One call of `join_and_place` (the join and the place it leaves the customer in), sent with
    the other joins of the show in flight (`onsale/batches.py`). A show without an on-sale has
    no line: its status then says `open`.
    """
    early = line is not None and not line.shuffled and now < line.opens_at
    row = await joins.join(show_id=show_id, user_id=user_id, now=now, early=early)
    return _place(row, show_id=show_id, user_id=user_id, now=now, secret=secret, line=line)


async def leave(conn: Conn, *, show_id: str, user_id: str) -> None:
    """Leave a show's line (nothing to do when not in it)."""
    await run(conn, sql.LEAVE, {"show_id": show_id, "user_id": user_id})


async def place_in_line(
    conn: Conn, *, show_id: str, user_id: str, now: datetime, secret: bytes, line: Line | None
) -> LineStatus:
    """Where a customer stands, from the database: the pass once admitted, a new line ticket."""
    row = await fetch_one(conn, sql.PLACE, {"show_id": show_id, "user_id": user_id})
    return _place(row, show_id=show_id, user_id=user_id, now=now, secret=secret, line=line)


def _place(
    row: Any, *, show_id: str, user_id: str, now: datetime, secret: bytes, line: Line | None
) -> LineStatus:
    """A customer's status from their row of PLACE (or JOIN; None: the show has no on-sale)."""
    if row is None or not row.waiting_room:
        return LineStatus(show_id=show_id, state=LineState.open)
    status = LineStatus(
        show_id=show_id, state=LineState.waiting, opens_at=row.opens_at, line_length=_waiting(row)
    )
    if row.sold_out_at is not None:
        status.state = LineState.sold_out
    elif not row.in_line:
        status.state = LineState.not_in_line
    elif row.admitted_at is not None:
        if row.expires_at <= now:
            status.state = LineState.expired
        else:
            status.state = LineState.admitted
            status.pass_expires_at = row.expires_at
            status.admission_pass = passes.issue(
                secret, show_id=show_id, user_id=user_id, expires_at=row.expires_at
            )
    else:
        number = passes.line_number(rank=row.rank, draw_key=row.draw_key)
        status.line_ticket = passes.issue_ticket(
            secret, show_id=show_id, user_id=user_id, number=number
        )
        _estimate(status, rank=row.rank, counters=row, line=line, now=now)
    return status


def place_from_line(
    line: Line, *, show_id: str, rank: int | None, ticket: str, now: datetime
) -> LineStatus | None:
    """Where the holder of a line ticket stands, from the replica's counters alone.

    None when only the database can say: the customer's place has come up (the pass, or a
    window that is over), or the line was drawn and the rank is not known here.
    """
    status = LineStatus(
        show_id=show_id, state=LineState.waiting, opens_at=line.opens_at, line_length=line.waiting
    )
    if line.sold_out:
        status.state = LineState.sold_out
        return status
    if (rank is None and line.shuffled) or (rank is not None and rank <= line.admitted_through):
        return None
    status.line_ticket = ticket
    _estimate(status, rank=rank, counters=line, line=line, now=now)
    return status


def _estimate(
    status: LineStatus, *, rank: int | None, counters: Any, line: Line | None, now: datetime
) -> None:
    """A waiting customer's position, estimated wait and when to ask again."""
    until_opening = max((status.opens_at - now).total_seconds(), 0.0) if status.opens_at else 0.0
    if rank is None:  # before the draw: ask again halfway to the opening
        status.poll_after_seconds = _bounded(until_opening / 2, POLL_MIN_SECONDS)
        return
    status.position = rank - counters.admitted_through
    # The admitter paces at least a quarter of the ceiling (`admitter.pace`), also before its
    # first tick has set a rate: the front of the line is not told to wait long at the opening.
    ceiling = float(counters.max_admit_per_second)
    rate = max(float(counters.admit_rate), ceiling / 4, MIN_RATE)
    ahead = status.position
    batch = ceiling * OPENING_SECONDS
    if line is not None and line.in_flight_cap:  # the opening admits no more than the cap
        batch = min(batch, line.in_flight_cap)
    if counters.admitted_through < batch:  # the opening's batch goes in as it joins
        ahead = max(0.0, rank - batch)
    wait = until_opening + ahead / rate
    status.estimated_wait_seconds = round(wait, 1)
    # Near the front often; far back rarely, but again a little before the seats may all be
    # gone (the unsold seats over the rate they go at), then every second until they are:
    # sold out must reach everyone within about two seconds.
    after = _bounded(wait / 4, POLL_FRONT_SECONDS)
    if until_opening == 0:
        after = min(after, POLL_OPEN_MAX_SECONDS)
    if line is not None and line.sell_rate > 0:
        horizon = line.unsold / line.sell_rate
        after = min(after, _bounded(HORIZON_SHARE * horizon, POLL_MIN_SECONDS))
    elif line is not None and until_opening == 0:  # open, nothing sold yet: the pace is unknown
        after = min(after, POLL_UNKNOWN_SECONDS)
    status.poll_after_seconds = round(after, 2)


def _bounded(seconds: float, floor: float) -> float:
    return min(POLL_MAX_SECONDS, max(floor, seconds))
