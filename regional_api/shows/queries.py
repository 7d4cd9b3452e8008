"""Read side of shows: listings with free-seat counts, one show, and seat availability.

Plain SQL: these are the most polled endpoints, and each answer is one statement. A seat held
past its deadline counts as free here, so availability never depends on a sweeper having run.
"""

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_FREE = "(ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= :now))"

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

_SEATS = text(f"""
    SELECT s.id AS show_id, s.status AS show_status, s.hall_id, s.currency,
           coalesce((h.layout ->> 'grid_rows')::int, 0) AS hall_rows,
           coalesce((h.layout ->> 'grid_cols')::int, 0) AS hall_cols,
           ss.seat_id, se.label, se.row_label, se.number, se.grid_row, se.grid_col,
           ss.seat_type, ss.price_minor,
           CASE WHEN {_FREE} THEN 'free' ELSE ss.status END AS seat_status
    FROM shows s
    JOIN halls h ON h.id = s.hall_id
    LEFT JOIN show_seats ss ON ss.show_id = s.id
    LEFT JOIN seats se ON se.id = ss.seat_id
    WHERE s.id = :show_id
    ORDER BY se.grid_row, se.grid_col
""")  # noqa: S608 - constant fragments only


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
        clauses.append("s.cinema_id = :cinema_id")
        params["cinema_id"] = filters.cinema_id
    if filters.movie_id:
        clauses.append("s.movie_id = :movie_id")
        params["movie_id"] = filters.movie_id
    if filters.q and filters.q.strip():
        clauses.append("m.title ILIKE :q ESCAPE '\\'")
        escaped = filters.q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["q"] = f"%{escaped}%"
    if filters.city and filters.city.strip():
        clauses.append("lower(c.city) = lower(:city)")
        params["city"] = filters.city.strip()
    if filters.date_from:
        clauses.append("(s.starts_at AT TIME ZONE c.timezone)::date >= :date_from")
        params["date_from"] = filters.date_from
    if filters.date_to:
        clauses.append("(s.starts_at AT TIME ZONE c.timezone)::date <= :date_to")
        params["date_to"] = filters.date_to
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (cached)."""
    return ZoneInfo(name)


def _show_dict(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item.pop("total", None)
    item["starts_at_local"] = row.starts_at.astimezone(zone(row.timezone))
    return item


async def list_shows(
    session: AsyncSession, *, filters: ShowFilters, now: datetime, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of shows (by start time) with free-seat counts, and the total matching."""
    where, params = _where(filters)
    statement = text(
        f"{_SHOW_SELECT}{where} ORDER BY s.starts_at, s.id LIMIT :limit OFFSET :offset"
    )
    rows = (
        await session.execute(statement, {**params, "now": now, "limit": limit, "offset": offset})
    ).all()
    if rows:
        return [_show_dict(row) for row in rows], int(rows[0].total)
    if offset == 0:
        return [], 0
    joins = "shows s JOIN movies m ON m.id = s.movie_id JOIN cinemas c ON c.id = s.cinema_id"
    count = text(f"SELECT count(*) FROM {joins}{where}")  # noqa: S608 - constant clauses
    return [], int((await session.execute(count, params)).scalar_one())


async def read_show(session: AsyncSession, *, show_id: str, now: datetime) -> dict[str, Any] | None:
    """One show with the same fields as a listing item, or None."""
    statement = text(f"{_SHOW_SELECT} WHERE s.id = :show_id")
    row = (await session.execute(statement, {"show_id": show_id, "now": now})).first()
    return _show_dict(row) if row else None


async def seat_map(session: AsyncSession, *, show_id: str, now: datetime) -> dict[str, Any] | None:
    """Every seat of a show with its price and status (lapsed holds are free), or None."""
    rows = (await session.execute(_SEATS, {"show_id": show_id, "now": now})).all()
    if not rows:
        return None
    first = rows[0]
    seats = [
        {
            "seat_id": row.seat_id,
            "label": row.label,
            "row_label": row.row_label,
            "number": row.number,
            "grid_row": row.grid_row,
            "grid_col": row.grid_col,
            "seat_type": row.seat_type,
            "price_minor": row.price_minor,
            "status": row.seat_status,
        }
        for row in rows
        if row.seat_id is not None
    ]
    counts = dict.fromkeys(("free", "held", "sold", "blocked"), 0)
    for seat in seats:
        counts[seat["status"]] += 1
    # Seats of a past show may come from a replaced layout: size the grid to fit them too.
    grid_rows = max([first.hall_rows, *(seat["grid_row"] + 1 for seat in seats)])
    grid_cols = max([first.hall_cols, *(seat["grid_col"] + 1 for seat in seats)])
    return {
        "show_id": first.show_id,
        "show_status": first.show_status,
        "hall_id": first.hall_id,
        "currency": first.currency,
        "grid_rows": grid_rows,
        "grid_cols": grid_cols,
        "counts": counts,
        "seats": seats,
    }
