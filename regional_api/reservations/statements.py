"""The SQL of holds and reservations (plain SQL: benchmarks/holds.py measures these paths).

Every seat change locks its `show_seats` rows in seat order (no deadlocks between groups).
A hold is `claim_seats()` (migration 0003; 0005 plans it once per connection), which claims
only rows free by the availability rule: free, or held with a lapsed deadline. The hot
statements run on psycopg directly (`raw_sql`), the others through SQLAlchemy (`text`).
Selling a reservation's seats is the payment's `SETTLE` (payments/statements.py).
"""

from sqlalchemy import text

from common.db import raw_sql

LOCK_SHOW_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(hashtextextended('show:' || :show_id, 0))")

SHOW = raw_sql("""
SELECT s.cinema_id, s.status, s.starts_at, s.currency, m.title
FROM shows s JOIN movies m ON m.id = s.movie_id
WHERE s.id = :show_id
""")
SHOW_CINEMA = raw_sql("SELECT cinema_id FROM shows WHERE id = :show_id")

# The seats a customer holds (live) or bought in a show, from the reservations alone (a held
# reservation keeps its seats until its deadline, a confirmed one has sold them). Joining
# show_seats here let the planner, with statistics taken before a rush, walk the whole partial
# index on show_seats.reservation_id for every hold (28 ms on a 20,000-seat show, measured).
# claim_seats (migration 0003) counts the cap the same way.
ACTIVE_SEATS = raw_sql("""
SELECT count(*) AS active
FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id
WHERE r.user_id = :user_id AND r.show_id = :show_id
  AND (r.status = 'confirmed' OR (r.status = 'held' AND r.hold_expires_at > :now))
""")

# A hold, all or nothing, in one statement: the database function takes the show's lock shared
# (a show cancellation takes it exclusive) and, for a capped customer, their (customer, show)
# lock, then claims the seats with a snapshot taken after the locks (migration 0003). Called on
# its own in autocommit, a hold is one round trip.
CLAIM = raw_sql("""
SELECT * FROM claim_seats(:show_id, CAST(:seat_ids AS bigint[]), :rid, :user_id, :email,
                          :channel, :now, :deadline, CAST(:cap AS integer))
""")

# The show's seats, looked up in its hall (ix_seats_hall), never in every hall's seats.
SEAT_MAP = raw_sql("""
SELECT ss.seat_id, st.grid_row, st.grid_col, ss.seat_type,
  ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= :now) AS free,
  st.label, ss.held_until
FROM show_seats ss JOIN seats st ON st.id = ss.seat_id
WHERE ss.show_id = :show_id AND st.hall_id = (SELECT hall_id FROM shows WHERE id = :show_id)
""")

# Free the rows this reservation still holds or owns (rows re-claimed by others are untouched).
# A reservation's seats are looked up in reservation_seats, not by show_seats.reservation_id:
# that column has no index, so that seat updates stay HOT (migration 0007).
FREE = text("""
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = :show_id AND reservation_id = :rid
    AND seat_id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = :rid)
  ORDER BY seat_id FOR UPDATE)
UPDATE show_seats s SET status = 'free', reservation_id = NULL, held_until = NULL
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id AND s.reservation_id = :rid
""")

MOVE_DEADLINE = text("""
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = :show_id AND reservation_id = :rid AND status = 'held'
    AND seat_id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = :rid)
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

# The seats the sweeper frees, found through reservation_seats as in FREE.
FREE_LAPSED = text("""
WITH target AS (
  SELECT ss.show_id, ss.seat_id
  FROM reservation_seats rs
  JOIN show_seats ss ON ss.show_id = rs.show_id AND ss.seat_id = rs.seat_id
  WHERE rs.reservation_id = ANY(CAST(:ids AS text[])) AND ss.reservation_id = rs.reservation_id
    AND ss.status = 'held' AND ss.held_until <= :now
  ORDER BY ss.show_id, ss.seat_id FOR UPDATE OF ss)
UPDATE show_seats s SET status = 'free', reservation_id = NULL, held_until = NULL
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id
  AND s.reservation_id = ANY(CAST(:ids AS text[])) AND s.status = 'held'
""")
