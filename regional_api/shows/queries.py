"""Read side of shows: listings with free-seat counts, one show, and seat availability.

Plain SQL: these are the most polled endpoints, and each answer is one statement. A seat held
past its deadline counts as free here, so availability never depends on a sweeper having run.
"""

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Conn, fetch, fetch_one, session_connection
from regional_api.db import contains_pattern

_FREE = "(ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= %(now)s))"

_SHOW_SELECT = f"""
    SELECT s.id, s.status, s.movie_id, m.title AS movie_title, m.duration_minutes,
           s.hall_id, h.name AS hall_name, s.cinema_id, c.name AS cinema_name, c.city,
           c.timezone, s.starts_at, s.ends_at, s.currency,
           coalesce(pr.prices, '{{}}'::jsonb) AS prices,
           seats.seat_count, seats.free_seats, count(*) OVER () AS total
    FROM shows s
    JOIN movies m ON m.id = s.movie_id
    JOIN halls h ON h.id = s.hall_id
    JOIN cinemas c ON c.id = s.cinema_id
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE ss.status <> 'blocked') AS seat_count,
               count(*) FILTER (WHERE {_FREE}) AS free_seats
        FROM show_seats ss WHERE ss.show_id = s.id
    ) seats ON true
    LEFT JOIN LATERAL (
        SELECT jsonb_object_agg(p.seat_type, p.amount_minor) AS prices
        FROM show_prices p WHERE p.show_id = s.id
    ) pr ON true
"""  # noqa: S608 - constant fragments only; every value is a bound parameter

# A show's fixed part, read once per replica (regional_api/shows/layouts.py): its facts, its
# prices, how many seats it has, and the grid size of its hall's layout document (which a layout
# replacement changes, with the hall's updated_at); for a seat map, then its seats in grid order.
_LAYOUT_SHOW = """
    SELECT s.id, s.hall_id, s.movie_id, s.cinema_id, s.starts_at, s.ends_at, s.currency,
           coalesce(pr.prices, '{}'::jsonb) AS prices, h.updated_at AS hall_changed_at,
           coalesce((h.layout ->> 'grid_rows')::int, 0) AS grid_rows,
           coalesce((h.layout ->> 'grid_cols')::int, 0) AS grid_cols,
           (SELECT count(*) FROM show_seats ss WHERE ss.show_id = s.id) AS seat_total
    FROM shows s
    JOIN halls h ON h.id = s.hall_id
    LEFT JOIN LATERAL (
        SELECT jsonb_object_agg(p.seat_type, p.amount_minor) AS prices
        FROM show_prices p WHERE p.show_id = s.id
    ) pr ON true
    WHERE s.id = %(show_id)s
"""
_LAYOUT_SEATS = """
    SELECT ss.seat_id, se.label, se.row_label, se.number, se.grid_row, se.grid_col,
           ss.seat_type, ss.price_minor
    FROM show_seats ss JOIN seats se ON se.id = ss.seat_id
    -- The hall's seats by ix_seats_hall, never every seat of every hall (growth.md).
    WHERE ss.show_id = %(show_id)s
      AND se.hall_id = (SELECT hall_id FROM shows WHERE id = %(show_id)s)
    ORDER BY se.grid_row, se.grid_col
"""

# What may change about a show, read on every uncached show read and seat map: its status, the
# names around it, the hall's version, and the seats that are not free (a lapsed hold is free)
# as seat_id * 4 + status code (1 held, 2 sold, 3 blocked; layouts.STATUSES).
_SHOW_STATE = f"""
    SELECT s.status, h.updated_at AS hall_changed_at, h.name AS hall_name,
           m.title AS movie_title, m.duration_minutes, c.name AS cinema_name, c.city,
           c.timezone,
           ARRAY(SELECT ss.seat_id * 4 + CASE ss.status WHEN 'held' THEN 1 WHEN 'sold' THEN 2
                                                        ELSE 3 END
                 FROM show_seats ss WHERE ss.show_id = s.id AND NOT {_FREE}) AS taken
    FROM shows s
    JOIN halls h ON h.id = s.hall_id
    JOIN movies m ON m.id = s.movie_id
    JOIN cinemas c ON c.id = s.cinema_id
    WHERE s.id = %(show_id)s
"""  # noqa: S608 - constant fragments only

_READ_SHOW = f"{_SHOW_SELECT} WHERE s.id = %(show_id)s"


@dataclass(frozen=True)
class ShowFilters:
    """What a show listing may be narrowed by; dates are days in each cinema's own timezone."""

    cinema_id: str | None = None
    movie_id: str | None = None
    q: str | None = None
    city: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    include_canceled: bool = False


def _where(filters: ShowFilters) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if not filters.include_canceled:
        clauses.append("s.status = 'scheduled'")
    if filters.cinema_id:
        clauses.append("s.cinema_id = %(cinema_id)s")
        params["cinema_id"] = filters.cinema_id
    if filters.movie_id:
        clauses.append("s.movie_id = %(movie_id)s")
        params["movie_id"] = filters.movie_id
    if filters.q and filters.q.strip():
        clauses.append("m.title ILIKE %(q)s ESCAPE '\\'")
        params["q"] = contains_pattern(filters.q.strip())
    if filters.city and filters.city.strip():
        clauses.append("lower(c.city) = lower(%(city)s)")
        params["city"] = filters.city.strip()
    if filters.date_from:
        clauses.append("(s.starts_at AT TIME ZONE c.timezone)::date >= %(date_from)s")
        params["date_from"] = filters.date_from
    if filters.date_to:
        clauses.append("(s.starts_at AT TIME ZONE c.timezone)::date <= %(date_to)s")
        params["date_to"] = filters.date_to
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (cached)."""
    return ZoneInfo(name)


def _show_dict(row: Any) -> dict[str, Any]:
    item: dict[str, Any] = row._asdict()  # a psycopg named tuple or a SQLAlchemy Row
    item.pop("total", None)
    item["starts_at_local"] = row.starts_at.astimezone(zone(row.timezone))
    return item


async def list_shows(
    session: AsyncSession, *, filters: ShowFilters, now: datetime, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of shows (by start time) with free-seat counts, and the total matching."""
    where, params = _where(filters)
    conn = await session_connection(session)
    statement = (
        f"{_SHOW_SELECT}{where} ORDER BY s.starts_at, s.id LIMIT %(limit)s OFFSET %(offset)s"
    )
    rows = await fetch(conn, statement, {**params, "now": now, "limit": limit, "offset": offset})
    if rows:
        return [_show_dict(row) for row in rows], int(rows[0].total)
    if offset == 0:
        return [], 0
    joins = "shows s JOIN movies m ON m.id = s.movie_id JOIN cinemas c ON c.id = s.cinema_id"
    count = f"SELECT count(*) FROM {joins}{where}"  # noqa: S608 - constant clauses
    return [], int((await fetch_one(conn, count, params))[0])


async def read_show(conn: Conn, *, show_id: str, now: datetime) -> dict[str, Any] | None:
    """One show with the same fields as a listing item, or None."""
    row = await fetch_one(conn, _READ_SHOW, {"show_id": show_id, "now": now})
    return _show_dict(row) if row else None


async def show_state(conn: Conn, *, show_id: str, now: datetime) -> Any:
    """What may change about a show (`_SHOW_STATE`) as of `now`, or None if there is no show."""
    return await fetch_one(conn, _SHOW_STATE, {"show_id": show_id, "now": now})


async def show_facts(conn: Conn, *, show_id: str) -> Any:
    """What never changes about a show (`_LAYOUT_SHOW`), or None if there is no show."""
    return await fetch_one(conn, _LAYOUT_SHOW, {"show_id": show_id})


async def layout_seats(conn: Conn, *, show_id: str) -> list[Any]:
    """A show's seats in grid order: ids, labels, places, types and prices."""
    return await fetch(conn, _LAYOUT_SEATS, {"show_id": show_id})
