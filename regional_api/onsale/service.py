"""On-sales: announce them, join their line, and tell a customer where they stand."""

from datetime import datetime
from typing import Any

from common.db import Conn, fetch, fetch_one, run
from regional_api.onsale import passes
from regional_api.onsale import statements as sql
from regional_api.reservations.errors import ShowNotFound
from schemas.onsale import LineState, LineStatus, OnSaleRead, OnSaleSet

MIN_RATE = 0.1  # per second, so a stalled line still shows a (long) estimate


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


async def join(conn: Conn, *, show_id: str, user_id: str, now: datetime) -> None:
    """Join a show's line once (a customer whose window is over joins at the end again).

    A show without an on-sale has no line: its status then says `open`.
    """
    params = {"show_id": show_id, "user_id": user_id, "now": now}
    await run(conn, sql.LEAVE_EXPIRED, params)
    await fetch(conn, sql.JOIN, params)


async def leave(conn: Conn, *, show_id: str, user_id: str) -> None:
    """Leave a show's line (nothing to do when not in it)."""
    await run(conn, sql.LEAVE, {"show_id": show_id, "user_id": user_id})


async def place_in_line(
    conn: Conn, *, show_id: str, user_id: str, now: datetime, secret: bytes
) -> LineStatus:
    """Where a customer stands: position, estimate, and the pass once admitted."""
    row = await fetch_one(conn, sql.PLACE, {"show_id": show_id, "user_id": user_id})
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
    elif row.rank is not None:
        status.position = row.rank - row.admitted_through
        rate = max(float(row.admit_rate), MIN_RATE)
        opening = max((row.opens_at - now).total_seconds(), 0.0)
        status.estimated_wait_seconds = round(opening + status.position / rate, 1)
    return status
