"""The SQL of holds and reservations (plain SQL: benchmarks/holds.py measures these paths).

Every seat change locks its `show_seats` rows in seat order (no deadlocks between groups).
A hold is `claim_seats()` (migration 0003; 0005 plans it once per connection), which claims
only rows free by the availability rule: free, or held with a lapsed deadline; a row another
transaction has locked is skipped, not waited for, so the claim is refused at once (0012). Every statement is
a plain string with psycopg's %(name)s parameters, run with `common.db` `run`/`fetch` on the hot
pool's connection or on a session's (`session_connection`). Selling a reservation's seats is the
payment's `SETTLE` (payments/statements.py).
"""

from regional_api.idempotency.service import KEY_USED

LOCK_SHOW_EXCLUSIVE = "SELECT pg_advisory_xact_lock(hashtextextended('show:' || %(show_id)s, 0))"

SHOW = """
SELECT s.cinema_id, s.status, s.starts_at, s.currency, m.title
FROM shows s JOIN movies m ON m.id = s.movie_id
WHERE s.id = %(show_id)s
"""
SHOW_CINEMA = "SELECT cinema_id FROM shows WHERE id = %(show_id)s"

# The seats a customer holds (live) or bought in a show, from the reservations alone (a held
# reservation keeps its seats until its deadline, a confirmed one has sold them). Joining
# show_seats here let the planner, with statistics taken before a rush, walk the whole partial
# index on show_seats.reservation_id for every hold (28 ms on a 20,000-seat show, measured).
# claim_seats (migration 0003) counts the cap the same way.
ACTIVE_SEATS = """
SELECT count(*) AS active
FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id
WHERE r.user_id = %(user_id)s AND r.show_id = %(show_id)s
  AND (r.status = 'confirmed' OR (r.status = 'held' AND r.hold_expires_at > %(now)s))
"""

# A hold, all or nothing, in one statement: the database function takes the show's lock shared
# (a show cancellation takes it exclusive) and, for a capped customer, their (customer, show)
# lock, then claims the seats with a snapshot taken after the locks (migration 0003). Called on
# its own in autocommit, a hold is one round trip.
_CLAIM_SEATS = """claim_seats(%(show_id)s, CAST(%(seat_ids)s AS bigint[]), %(rid)s, %(user_id)s,
                          %(email)s, %(channel)s, %(now)s, %(deadline)s,
                          CAST(%(cap)s AS integer))"""
CLAIM = f"""
SELECT * FROM {_CLAIM_SEATS}
"""  # noqa: S608 - constant fragments only

# A hold with an Idempotency-Key, still one statement (its own transaction in autocommit): the
# claim runs only if the key is unused (a one-time filter: a replay claims nothing), and a won
# claim inserts the key row with its answer, 201 and the reservation's id. A refused claim
# leaves no key (a retry may succeed). The rows are the claim's, or one naming the used key.
CLAIM_KEYED = f"""
WITH {KEY_USED},
claim AS (
  SELECT * FROM {_CLAIM_SEATS}
  WHERE NOT EXISTS (SELECT 1 FROM used)),
stored AS (
  INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response)
  SELECT %(scope)s, %(key)s, %(hash)s, 201,
         jsonb_build_object('reservation_id', CAST(%(rid)s AS text))
  WHERE EXISTS (SELECT 1 FROM claim WHERE won))
SELECT c.*, u.request_hash AS key_hash, u.status_code AS key_status, u.response AS key_response
FROM claim c FULL JOIN used u ON true
ORDER BY c.grid_row, c.grid_col
"""  # noqa: S608 - constant fragments only

# The show's seats, looked up in its hall (ix_seats_hall), never in every hall's seats.
SEAT_MAP = """
SELECT ss.seat_id, st.grid_row, st.grid_col, ss.seat_type,
  ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= %(now)s) AS free,
  st.label, ss.held_until
FROM show_seats ss JOIN seats st ON st.id = ss.seat_id
WHERE ss.show_id = %(show_id)s
  AND st.hall_id = (SELECT hall_id FROM shows WHERE id = %(show_id)s)
"""

# Free the rows this reservation still holds or owns (rows re-claimed by others are untouched).
# A reservation's seats are looked up in reservation_seats, not by show_seats.reservation_id:
# that column has no index, so that seat updates stay HOT (migration 0007).
FREE = """
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = %(show_id)s AND reservation_id = %(rid)s
    AND seat_id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = %(rid)s)
  ORDER BY seat_id FOR UPDATE)
UPDATE show_seats s SET status = 'free', reservation_id = NULL, held_until = NULL
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id AND s.reservation_id = %(rid)s
"""

MOVE_DEADLINE = """
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = %(show_id)s AND reservation_id = %(rid)s AND status = 'held'
    AND seat_id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = %(rid)s)
  ORDER BY seat_id FOR UPDATE)
UPDATE show_seats s SET held_until = %(deadline)s
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id AND s.reservation_id = %(rid)s
"""

EXPIRE = """
WITH lapsed AS (
  SELECT id FROM reservations
  WHERE status = 'held' AND hold_expires_at <= %(now)s
  ORDER BY hold_expires_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
UPDATE reservations r SET status = 'expired' FROM lapsed l WHERE r.id = l.id
RETURNING r.id, r.show_id
"""

# The seats the sweeper frees, found through reservation_seats as in FREE.
FREE_LAPSED = """
WITH target AS (
  SELECT ss.show_id, ss.seat_id
  FROM reservation_seats rs
  JOIN show_seats ss ON ss.show_id = rs.show_id AND ss.seat_id = rs.seat_id
  WHERE rs.reservation_id = ANY(CAST(%(ids)s AS text[])) AND ss.reservation_id = rs.reservation_id
    AND ss.status = 'held' AND ss.held_until <= %(now)s
  ORDER BY ss.show_id, ss.seat_id FOR UPDATE OF ss)
UPDATE show_seats s SET status = 'free', reservation_id = NULL, held_until = NULL
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id
  AND s.reservation_id = ANY(CAST(%(ids)s AS text[])) AND s.status = 'held'
"""
