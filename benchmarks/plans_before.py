"""The statements as they were before the data-growth fixes, measured beside the current ones.

Only `benchmarks/growth.py` runs these (`plans.explain(..., extra=BEFORE)`): they read whole
tables that grow with history, which is what the growth benchmark shows.
"""

from sqlalchemy import text

from benchmarks.plans import Case, _past_show, _report, _show, psycopg_sql

# The statements as they were before the data-growth fixes (main at 9a7da82), measured beside
# the current ones by benchmarks/growth.py only.
_DAILY_BEFORE = """
    WITH s AS (
        SELECT sh.id, sh.currency, sh.status, (sh.starts_at AT TIME ZONE :tz)::date AS day
        FROM shows sh
        WHERE sh.cinema_id = :cinema_id
          AND sh.starts_at >= (CAST(:date_from AS date)::timestamp AT TIME ZONE :tz)
          AND sh.starts_at < ((CAST(:date_to AS date) + 1)::timestamp AT TIME ZONE :tz)
    ),
    cap AS (
        SELECT ss.show_id, count(*) FILTER (WHERE ss.status <> 'blocked') AS capacity
        FROM show_seats ss JOIN s ON s.id = ss.show_id GROUP BY ss.show_id
    ), sold AS (
        SELECT r.show_id, count(*) AS tickets, sum(rs.price_minor) AS revenue
        FROM reservations r JOIN s ON s.id = r.show_id
        JOIN reservation_seats rs ON rs.reservation_id = r.id
        WHERE r.status = 'confirmed' GROUP BY r.show_id
    ), ref AS (
        SELECT r.show_id, count(*) AS n, sum(f.amount_minor) AS amount
        FROM refunds f JOIN reservations r ON r.id = f.reservation_id
        JOIN s ON s.id = r.show_id GROUP BY r.show_id
    )
    SELECT day, currency, shows, capacity, tickets_sold, revenue_minor, refunds_count,
           refunds_minor,
           coalesce(round(100.0 * tickets_sold / nullif(capacity, 0), 1), 0)::float
               AS occupancy_pct
    FROM (
        SELECT s.day, s.currency,
               count(*) FILTER (WHERE s.status = 'scheduled') AS shows,
               coalesce(sum(cap.capacity) FILTER (WHERE s.status = 'scheduled'), 0) AS capacity,
               coalesce(sum(sold.tickets), 0) AS tickets_sold,
               coalesce(sum(sold.revenue), 0) AS revenue_minor,
               coalesce(sum(ref.n), 0) AS refunds_count,
               coalesce(sum(ref.amount), 0) AS refunds_minor
        FROM s LEFT JOIN cap ON cap.show_id = s.id LEFT JOIN sold ON sold.show_id = s.id
        LEFT JOIN ref ON ref.show_id = s.id
        GROUP BY s.day, s.currency
    ) per_day
    ORDER BY day, currency

"""
_USER_PAGE_BEFORE = """
SELECT id, count(*) OVER () AS total FROM reservations
WHERE user_id = :user_id
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset
"""
_SEAT_MAP_BEFORE = """
SELECT ss.seat_id, st.grid_row, st.grid_col, ss.seat_type,
  ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= :now) AS free,
  st.label, ss.held_until
FROM show_seats ss JOIN seats st ON st.id = ss.seat_id
WHERE ss.show_id = :show_id
"""
_SHOW_REFUNDS_BEFORE = """
SELECT count(*) AS refunds_count, coalesce(sum(f.amount_minor), 0) AS refunds_minor
FROM refunds f JOIN reservations r ON r.id = f.reservation_id
WHERE r.show_id = :show_id
"""

BEFORE = (
    Case("best-available seat map (before)", "hot", psycopg_sql(text(_SEAT_MAP_BEFORE)), _show),
    Case("cinema report, 30 days (before)", "report", psycopg_sql(text(_DAILY_BEFORE)), _report),
    Case(
        "show report: refunds (before)",
        "report",
        psycopg_sql(text(_SHOW_REFUNDS_BEFORE)),
        _past_show,
    ),
    Case(
        "my reservations, first page (before)",
        "report",
        psycopg_sql(text(_USER_PAGE_BEFORE)),
        lambda h, now: {"user_id": h.heavy_user, "limit": 50, "offset": 0},
    ),
)
