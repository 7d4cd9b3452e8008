"""Sales and occupancy reports, each one aggregated by PostgreSQL (no loops over rows here)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch, fetch_one, session_connection
from common.errors import Unprocessable
from regional_api.reservations.errors import ShowNotFound
from schemas.reports import MAX_REPORT_DAYS

DEFAULT_REPORT_DAYS = 30


@dataclass(frozen=True)
class Period:
    """An inclusive range of local days."""

    date_from: date
    date_to: date


def report_period(date_from: date | None, date_to: date | None, *, today: date) -> Period:
    """Fill in missing bounds (a 30-day window) and refuse reversed or too long ranges."""
    window = timedelta(days=DEFAULT_REPORT_DAYS - 1)
    try:
        if date_to is None:
            date_to = date_from + window if date_from is not None else today
        start, end = date_from or date_to - window, date_to
    except OverflowError:
        raise Unprocessable("dates out of range", code="invalid_date_range") from None
    if start > end:
        raise Unprocessable("date_from is after date_to", code="invalid_date_range")
    if (end - start).days + 1 > MAX_REPORT_DAYS:
        raise Unprocessable(
            f"a report covers at most {MAX_REPORT_DAYS} days",
            code="date_range_too_long",
            max_days=MAX_REPORT_DAYS,
        )
    return Period(start, end)


_SHOW_HEADER = """
    SELECT sh.id AS show_id, sh.cinema_id, sh.movie_id, m.title AS movie_title, sh.starts_at,
           sh.status, sh.currency
    FROM shows sh JOIN movies m ON m.id = sh.movie_id
    WHERE sh.id = %(show_id)s
    """

# One row per seat type plus the ROLLUP total (seat_type NULL); a lapsed hold counts as free.
_SHOW_SEATS = """
    WITH seat_counts AS (
        SELECT seat_type,
               count(*) FILTER (WHERE status <> 'blocked') AS capacity,
               count(*) FILTER (WHERE status = 'sold') AS sold,
               count(*) FILTER (WHERE status = 'held' AND held_until > %(now)s) AS held,
               count(*) FILTER (
                   WHERE status = 'free' OR (status = 'held' AND held_until <= %(now)s)) AS free,
               count(*) FILTER (WHERE status = 'blocked') AS blocked
        FROM show_seats WHERE show_id = %(show_id)s
        GROUP BY ROLLUP (seat_type)
    ), revenue AS (
        SELECT rs.seat_type, sum(rs.price_minor) AS revenue_minor
        FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id
        WHERE r.show_id = %(show_id)s AND r.status = 'confirmed'
        GROUP BY ROLLUP (rs.seat_type)
    )
    SELECT c.seat_type, c.capacity, c.sold, c.held, c.free, c.blocked,
           coalesce(v.revenue_minor, 0) AS revenue_minor,
           coalesce(round(100.0 * c.sold / nullif(c.capacity, 0), 1), 0)::float AS occupancy_pct
    FROM seat_counts c LEFT JOIN revenue v ON v.seat_type IS NOT DISTINCT FROM c.seat_type
    ORDER BY c.seat_type NULLS LAST
    """

# Refunds are read from the show's canceled reservations (only those are refunded), whose
# `refund_minor` is written with the refund row in one transaction (payments/refunds.py): one
# look into a small partial index (migration 0007), never a pass over every refund ever made
# (docs/benchmarks/growth.md).
_SHOW_REFUNDS = """
    SELECT count(r.refund_minor) AS refunds_count,
           coalesce(sum(r.refund_minor), 0) AS refunds_minor
    FROM reservations r
    WHERE r.show_id = %(show_id)s AND r.status = 'canceled'
    """


_EMPTY_SHOW: dict[str, Any] = dict.fromkeys(
    ("capacity", "sold", "held", "free", "blocked", "revenue_minor"), 0
) | {"occupancy_pct": 0.0}


async def show_report(session: AsyncSession, *, show_id: str, now: datetime) -> dict[str, Any]:
    """Capacity, held, sold, free, occupancy, revenue by seat type and refunds of one show."""
    conn = await session_connection(session)
    header = await fetch_one(conn, _SHOW_HEADER, {"show_id": show_id})
    if header is None:
        raise ShowNotFound(show_id)
    rows = await fetch(conn, _SHOW_SEATS, {"show_id": show_id, "now": now})
    refunds = await fetch_one(conn, _SHOW_REFUNDS, {"show_id": show_id})
    by_type = [row._asdict() for row in rows if row.seat_type is not None]
    totals = next((row._asdict() for row in rows if row.seat_type is None), _EMPTY_SHOW)
    totals.pop("seat_type", None)
    return {**header._asdict(), **totals, **refunds._asdict(), "by_seat_type": by_type}


# Every figure is looked up per show of the window through an index, so the cost follows the
# shows in the window, not the history: one pass over the show's seats (primary key; the
# seats of a show stay on a page or two, migration 0007) gives capacity, tickets and revenue
# (a sold seat is a seat of a confirmed reservation, at the price the reservation recorded:
# the claim copies it and it never changes), and refunds come from the show's canceled
# reservations in a partial index that carries their `refund_minor` (as _SHOW_REFUNDS).
# Joining whole tables made PostgreSQL hash every refund and reservation ever made, and JIT
# compile the plan (docs/benchmarks/growth.md); JIT is off for the service (common/db.py).
_PER_SHOW = """
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE ss.status <> 'blocked') AS capacity,
               count(*) FILTER (WHERE ss.status = 'sold') AS tickets,
               sum(ss.price_minor) FILTER (WHERE ss.status = 'sold') AS revenue
        FROM show_seats ss WHERE ss.show_id = s.id
    ) st
    CROSS JOIN LATERAL (
        SELECT count(r.refund_minor) AS n, sum(r.refund_minor) AS amount
        FROM reservations r WHERE r.show_id = s.id AND r.status = 'canceled'
    ) ref
"""

_DAILY = f"""
    SELECT day, currency, shows, capacity, tickets_sold, revenue_minor, refunds_count,
           refunds_minor,
           coalesce(round(100.0 * tickets_sold / nullif(capacity, 0), 1), 0)::float
               AS occupancy_pct
    FROM (
        SELECT s.day, s.currency,
               count(*) FILTER (WHERE s.status = 'scheduled') AS shows,
               coalesce(sum(st.capacity) FILTER (WHERE s.status = 'scheduled'), 0) AS capacity,
               coalesce(sum(st.tickets), 0) AS tickets_sold,
               coalesce(sum(st.revenue), 0) AS revenue_minor,
               coalesce(sum(ref.n), 0) AS refunds_count,
               coalesce(sum(ref.amount), 0) AS refunds_minor
        FROM (
            SELECT sh.id, sh.currency, sh.status, (sh.starts_at AT TIME ZONE %(tz)s)::date AS day
            FROM shows sh
            WHERE sh.cinema_id = %(cinema_id)s
              AND sh.starts_at >= (CAST(%(date_from)s AS date)::timestamp AT TIME ZONE %(tz)s)
              AND sh.starts_at < ((CAST(%(date_to)s AS date) + 1)::timestamp AT TIME ZONE %(tz)s)
        ) s
        {_PER_SHOW}
        GROUP BY s.day, s.currency
    ) per_day
    ORDER BY day, currency
    """  # noqa: S608 - constant fragments only; every value is a bound parameter


async def daily_report(
    session: AsyncSession, *, cinema_id: str, timezone: str, period: Period
) -> list[dict[str, Any]]:
    """A cinema's shows, tickets, occupancy, revenue and refunds per local day."""
    params = {
        "cinema_id": cinema_id,
        "tz": timezone,
        "date_from": period.date_from,
        "date_to": period.date_to,
    }
    rows = await fetch(await session_connection(session), _DAILY, params)
    return [row._asdict() for row in rows]


# Shows are picked by their local day in their cinema's zone; the UTC bounds (one day wider
# on each side, beyond any zone offset) let the starts_at index narrow the scan first. Each
# show's figures are looked up as in the daily report (_PER_SHOW).
_MOVIES = f"""
    SELECT s.movie_id, m.title, s.currency,
           count(*) FILTER (WHERE s.status = 'scheduled') AS shows,
           coalesce(sum(st.tickets), 0) AS tickets_sold,
           coalesce(sum(st.revenue), 0) AS revenue_minor,
           coalesce(sum(ref.amount), 0) AS refunds_minor
    FROM (
        SELECT sh.id, sh.movie_id, sh.currency, sh.status
        FROM shows sh JOIN cinemas c ON c.id = sh.cinema_id
        WHERE sh.starts_at >= CAST(%(date_from)s AS date) - 1
          AND sh.starts_at < CAST(%(date_to)s AS date) + 2
          AND (sh.starts_at AT TIME ZONE c.timezone)::date
              BETWEEN CAST(%(date_from)s AS date) AND CAST(%(date_to)s AS date)
          AND (CAST(%(cinema_ids)s AS text[]) IS NULL OR sh.cinema_id = ANY(%(cinema_ids)s))
    ) s
    {_PER_SHOW}
    JOIN movies m ON m.id = s.movie_id
    GROUP BY s.movie_id, m.title, s.currency
    ORDER BY revenue_minor DESC, m.title, s.movie_id
    """  # noqa: S608 - constant fragments only; every value is a bound parameter


async def movie_report(
    session: AsyncSession, *, period: Period, cinema_ids: list[str] | None
) -> list[dict[str, Any]]:
    """Shows, tickets, revenue and refunds per movie, optionally limited to some cinemas."""
    params = {
        "date_from": period.date_from,
        "date_to": period.date_to,
        "cinema_ids": cinema_ids,
    }
    rows = await fetch(await session_connection(session), _MOVIES, params)
    return [row._asdict() for row in rows]
