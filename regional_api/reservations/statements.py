"""The SQL of holds and reservations (plain SQL: benchmarks/holds.py measures these paths).

Every seat change locks its `show_seats` rows in seat order (no deadlocks between groups) and
claims only rows that are free by the availability rule: free, or held with a lapsed deadline.
The hold and confirmation statements run on psycopg directly (`raw_sql`), the others through
SQLAlchemy (`text`).
"""

from sqlalchemy import text

from common.db import raw_sql

LOCK_SHOW_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(hashtextextended('show:' || :show_id, 0))")

# Holds take the show's lock shared (a show cancellation takes it exclusive) and, for a capped
# customer, their (customer, show) lock; the locks are taken before the row is read, and the
# claim that follows re-checks the show and the cap with a snapshot taken after the locks.
_LOCKED_SHOW = """
SELECT s.cinema_id, s.status, s.starts_at, s.currency, m.title
FROM ({locks}) AS locked, shows s JOIN movies m ON m.id = s.movie_id
WHERE s.id = :show_id
"""
_SHOW_LOCK = "pg_advisory_xact_lock_shared(hashtextextended('show:' || :show_id, 0))"
_CUSTOMER_LOCK = "pg_advisory_xact_lock(hashtextextended(:user_id || ':' || :show_id, 0))"
LOCKED_SHOW = raw_sql(_LOCKED_SHOW.format(locks=f"SELECT {_SHOW_LOCK}"))
LOCKED_SHOW_AND_CUSTOMER = raw_sql(
    _LOCKED_SHOW.format(locks=f"SELECT {_SHOW_LOCK}, {_CUSTOMER_LOCK}")
)
SHOW_STATUS = raw_sql("SELECT status FROM shows WHERE id = :show_id")
SHOW_CINEMA = raw_sql("SELECT cinema_id FROM shows WHERE id = :show_id")

# The seats a customer holds (live) or bought in a show, from the reservations alone (a held
# reservation keeps its seats until its deadline, a confirmed one has sold them). Joining
# show_seats here let the planner, with statistics taken before a rush, walk the whole partial
# index on show_seats.reservation_id for every hold (28 ms on a 20,000-seat show, measured).
_ACTIVE_SEATS = """
(SELECT count(*) FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id
  WHERE r.user_id = :user_id AND r.show_id = :show_id
    AND (r.status = 'confirmed' OR (r.status = 'held' AND r.hold_expires_at > :now)))
"""
ACTIVE_SEATS = raw_sql(f"SELECT {_ACTIVE_SEATS} AS active")

# A hold, all or nothing in one statement: lock the requested rows that are free by the rule,
# in seat order (rows visibly taken are never waited on), and only if all of them are, claim
# them, record them as the reservation's seats and insert the reservation (foreign keys are
# checked at the end of the statement). A refused claim writes nothing and returns the
# requested seats instead, each marked free or not, so the caller can name the taken ones.
CLAIM = raw_sql(
    """
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = :show_id AND seat_id = ANY(CAST(:seat_ids AS bigint[]))
    AND (status = 'free' OR (status = 'held' AND held_until <= :now))
  ORDER BY seat_id FOR UPDATE),
ready AS (
  SELECT count(*) = :n
     AND coalesce((SELECT status = 'scheduled' AND starts_at > :now
                   FROM shows WHERE id = :show_id), false)
     AND (CAST(:cap AS integer) IS NULL OR ACTIVE_SEATS + :n <= CAST(:cap AS integer)) AS ok
  FROM target),
claimed AS (
  UPDATE show_seats s SET status = 'held', reservation_id = :rid, held_until = :deadline
  FROM target t, ready
  WHERE ready.ok AND s.show_id = t.show_id AND s.seat_id = t.seat_id
    AND (s.status = 'free' OR (s.status = 'held' AND s.held_until <= :now))
  RETURNING s.seat_id, s.seat_type, s.price_minor),
recorded AS (
  INSERT INTO reservation_seats (reservation_id, show_id, seat_id, seat_type, price_minor)
  SELECT :rid, :show_id, seat_id, seat_type, price_minor FROM claimed),
reservation AS (
  INSERT INTO reservations (id, show_id, cinema_id, user_id, customer_email, channel, status,
                            hold_expires_at, amount_minor, currency, created_at)
  SELECT :rid, :show_id, sh.cinema_id, :user_id, :email, :channel, 'held', :deadline,
         coalesce((SELECT sum(price_minor) FROM claimed), 0), sh.currency, :now
  FROM ready, shows sh WHERE ready.ok AND sh.id = :show_id)
SELECT true AS won, c.seat_id, st.label, st.row_label, st.number, c.seat_type, c.price_minor,
       true AS free, st.grid_row, st.grid_col
FROM claimed c JOIN seats st ON st.id = c.seat_id
UNION ALL
SELECT false, ss.seat_id, st.label, st.row_label, st.number, ss.seat_type, ss.price_minor,
       ss.seat_id IN (SELECT seat_id FROM target), st.grid_row, st.grid_col
FROM ready, show_seats ss JOIN seats st ON st.id = ss.seat_id
WHERE NOT ready.ok AND ss.show_id = :show_id AND ss.seat_id = ANY(CAST(:seat_ids AS bigint[]))
ORDER BY grid_row, grid_col
""".replace("ACTIVE_SEATS", _ACTIVE_SEATS)
)

# The seat map of best-available; with no free seat, the labels and the hold deadlines make the
# full-show hint (full_shows.py) without another statement.
SEAT_MAP = raw_sql("""
SELECT ss.seat_id, st.grid_row, st.grid_col, ss.seat_type,
  ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= :now) AS free,
  st.label, ss.held_until
FROM show_seats ss JOIN seats st ON st.id = ss.seat_id
WHERE ss.show_id = :show_id
""")

SEAT_IDS = text(
    "SELECT seat_id FROM reservation_seats WHERE reservation_id = :rid ORDER BY seat_id"
)

# Sell every seat of the reservation and give each a ticket code, or change nothing.
SELL = text("""
WITH target AS (
  SELECT show_id, seat_id, status, held_until, reservation_id FROM show_seats
  WHERE show_id = :show_id AND seat_id = ANY(CAST(:seat_ids AS bigint[]))
  ORDER BY seat_id FOR UPDATE),
ready AS (
  SELECT count(*) = :n AS ok FROM target
  WHERE reservation_id = :rid OR status = 'free' OR (status = 'held' AND held_until <= :now)),
sold AS (
  UPDATE show_seats s SET status = 'sold', reservation_id = :rid, held_until = NULL
  FROM target t, ready
  WHERE ready.ok AND s.show_id = t.show_id AND s.seat_id = t.seat_id
    AND (s.reservation_id = :rid OR s.status = 'free'
         OR (s.status = 'held' AND s.held_until <= :now))
  RETURNING s.seat_id)
UPDATE reservation_seats rs SET ticket_code = c.code
FROM unnest(CAST(:seat_ids AS bigint[]), CAST(:codes AS text[])) AS c(seat_id, code), sold
WHERE rs.reservation_id = :rid AND rs.seat_id = c.seat_id AND sold.seat_id = c.seat_id
RETURNING rs.seat_id
""")

# Free the rows this reservation still holds or owns (rows re-claimed by others are untouched).
FREE = text("""
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = :show_id AND reservation_id = :rid
  ORDER BY seat_id FOR UPDATE)
UPDATE show_seats s SET status = 'free', reservation_id = NULL, held_until = NULL
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id AND s.reservation_id = :rid
""")

MOVE_DEADLINE = text("""
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = :show_id AND reservation_id = :rid AND status = 'held'
  ORDER BY seat_id FOR UPDATE)
UPDATE show_seats s SET held_until = :deadline
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id AND s.reservation_id = :rid
""")

EXPIRE = text("""
WITH lapsed AS (
  SELECT id FROM reservations
  WHERE status = 'held' AND hold_expires_at <= :now
  ORDER BY hold_expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)
UPDATE reservations r SET status = 'expired' FROM lapsed l WHERE r.id = l.id
RETURNING r.id, r.show_id
""")

FREE_LAPSED = text("""
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE reservation_id = ANY(CAST(:ids AS text[])) AND status = 'held' AND held_until <= :now
  ORDER BY show_id, seat_id FOR UPDATE)
UPDATE show_seats s SET status = 'free', reservation_id = NULL, held_until = NULL
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id
  AND s.reservation_id = ANY(CAST(:ids AS text[])) AND s.status = 'held'
""")
