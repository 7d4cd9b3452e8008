"""Read side of reservations: one reservation, a customer's history, a show's bookings.

Plain SQL on psycopg: a customer's history is a hot read, run on the hot pool in autocommit;
endpoints that already hold a session pass it and the statements run in its transaction.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Conn, fetch, session_connection
from schemas.pagination import KeysetPage, Page, encode_cursor
from schemas.reservations import ReservationRead, ReservationSeatRead, ReservationStatus

# One round trip for the reservations, their show, movie and seats (rows repeat per seat).
_DETAILS = """
SELECT r.id, r.show_id, r.cinema_id, r.user_id, r.channel, r.status, r.amount_minor,
       r.currency, r.refund_minor, r.hold_expires_at, r.extensions, r.created_at,
       r.confirmed_at, r.canceled_at, s.starts_at AS show_starts_at, m.title AS movie_title,
       rs.seat_id, st.label, st.row_label, st.number, rs.seat_type, rs.price_minor,
       rs.ticket_code
FROM reservations r
JOIN shows s ON s.id = r.show_id
JOIN movies m ON m.id = s.movie_id
JOIN reservation_seats rs ON rs.reservation_id = r.id
JOIN seats st ON st.id = rs.seat_id
WHERE r.id = ANY(CAST(%(ids)s AS text[]))
ORDER BY st.grid_row, st.grid_col
"""

# A customer's history is paged by key on ix_reservations_user (user_id, created_at, id): a
# page reads its own rows and one more, never the whole history (docs/benchmarks/growth.md).
# Customer service sees only the reservations at `:cinemas` (staff), or all (NULL: admins).
_USER_PAGE = """
SELECT id, created_at FROM reservations
WHERE user_id = %(user_id)s
  AND (CAST(%(cinemas)s AS text[]) IS NULL OR cinema_id = ANY(CAST(%(cinemas)s AS text[])))
ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
"""
_USER_PAGE_BEFORE = """
SELECT id, created_at FROM reservations
WHERE user_id = %(user_id)s AND (created_at, id) < (%(before_at)s, %(before_id)s)
  AND (CAST(%(cinemas)s AS text[]) IS NULL OR cinema_id = ANY(CAST(%(cinemas)s AS text[])))
ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
"""

_SHOW_PAGE = """
SELECT id, count(*) OVER () AS total FROM reservations
WHERE show_id = %(show_id)s AND (CAST(%(status)s AS text) IS NULL OR status = %(status)s)
ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
"""


Db = AsyncSession | Conn  # a request's session, or a connection of the hot pool


async def _conn(db: Db) -> Conn:
    return await session_connection(db) if isinstance(db, AsyncSession) else db


def _status(row: Any, now: datetime) -> ReservationStatus:
    if row.status == "held" and row.hold_expires_at is not None and row.hold_expires_at <= now:
        return ReservationStatus.expired
    return ReservationStatus(row.status)


def seat_read(row: Any, *, ticket_code: str | None = None) -> ReservationSeatRead:
    """A reservation's seat row (with its price snapshot) as the wire shows it."""
    return ReservationSeatRead(
        seat_id=row.seat_id,
        label=row.label,
        row_label=row.row_label,
        number=row.number,
        seat_type=row.seat_type,
        price_minor=row.price_minor,
        ticket_code=ticket_code,
    )


def _read(rows: list[Any], *, now: datetime, max_extensions: int) -> ReservationRead:
    head = rows[0]
    status = _status(head, now)
    confirmed = status is ReservationStatus.confirmed
    seats = [seat_read(r, ticket_code=r.ticket_code if confirmed else None) for r in rows]
    held = status is ReservationStatus.held
    return ReservationRead(
        id=head.id,
        show_id=head.show_id,
        cinema_id=head.cinema_id,
        user_id=head.user_id,
        channel=head.channel,
        status=status,
        seats=seats,
        amount_minor=head.amount_minor,
        currency=head.currency.strip(),
        refund_minor=head.refund_minor,
        hold_expires_at=head.hold_expires_at if held else None,
        extensions_used=head.extensions,
        extensions_left=max(0, max_extensions - head.extensions) if held else 0,
        created_at=head.created_at,
        confirmed_at=head.confirmed_at,
        canceled_at=head.canceled_at,
        show_starts_at=head.show_starts_at,
        movie_title=head.movie_title,
    )


async def reservation_reads(
    db: Db, ids: Sequence[str], *, now: datetime, max_extensions: int
) -> list[ReservationRead]:
    """The wire form of the given reservations, in the order of `ids`."""
    if not ids:
        return []
    grouped: dict[str, list[Any]] = {}
    for row in await fetch(await _conn(db), _DETAILS, {"ids": list(ids)}):
        grouped.setdefault(row.id, []).append(row)
    return [
        _read(grouped[rid], now=now, max_extensions=max_extensions) for rid in ids if rid in grouped
    ]


async def reservation_read(
    db: Db, reservation_id: str, *, now: datetime, max_extensions: int
) -> ReservationRead:
    """The wire form of one reservation (it must exist)."""
    reads = await reservation_reads(db, [reservation_id], now=now, max_extensions=max_extensions)
    return reads[0]


async def _page(
    db: Db,
    query: str,
    params: dict[str, Any],
    *,
    limit: int,
    offset: int,
    now: datetime,
    max_extensions: int,
) -> Page[ReservationRead]:
    conn = await _conn(db)
    rows = await fetch(conn, query, params | {"limit": limit, "offset": offset})
    total = int(rows[0].total) if rows else 0
    if not rows and offset > 0:
        first = await fetch(conn, query, params | {"limit": 1, "offset": 0})
        total = int(first[0].total) if first else 0
    items = await reservation_reads(
        conn, [r.id for r in rows], now=now, max_extensions=max_extensions
    )
    return Page[ReservationRead](items=items, total=total, limit=limit, offset=offset)


async def user_reservations(
    db: Db,
    *,
    user_id: str,
    limit: int,
    offset: int,
    before: tuple[datetime, str] | None,
    now: datetime,
    max_extensions: int,
    cinemas: Sequence[str] | None = None,
) -> KeysetPage[ReservationRead]:
    """A customer's reservations in this region, newest first, after the key `before`; only
    those at `cinemas` when given."""
    params: dict[str, Any] = {
        "user_id": user_id,
        "cinemas": None if cinemas is None else list(cinemas),
        "limit": limit + 1,
        "offset": offset,
    }
    query = _USER_PAGE
    if before is not None:
        query = _USER_PAGE_BEFORE
        params |= {"before_at": before[0], "before_id": before[1]}
    conn = await _conn(db)
    rows = await fetch(conn, query, params)
    more, rows = len(rows) > limit, rows[:limit]
    items = await reservation_reads(
        conn, [r.id for r in rows], now=now, max_extensions=max_extensions
    )
    last = rows[-1] if more else None
    return KeysetPage[ReservationRead](
        items=items,
        limit=limit,
        offset=offset,
        next_before=encode_cursor(last.created_at, last.id) if last else None,
    )


async def show_reservations(
    db: Db,
    *,
    show_id: str,
    status: str | None,
    limit: int,
    offset: int,
    now: datetime,
    max_extensions: int,
) -> Page[ReservationRead]:
    """The reservations of one show, newest first, optionally of one stored status."""
    return await _page(
        db,
        _SHOW_PAGE,
        {"show_id": show_id, "status": status},
        limit=limit,
        offset=offset,
        now=now,
        max_extensions=max_extensions,
    )
