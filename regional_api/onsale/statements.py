"""The SQL of on-sales and their waiting room (psycopg; the line functions are in 0006)."""

SET_ONSALE = """
INSERT INTO onsales (show_id, opens_at, waiting_room, window_seconds, max_admit_per_second,
                     created_at)
SELECT s.id, %(opens_at)s, %(waiting_room)s, %(window_seconds)s, %(rate)s, %(now)s FROM shows s
WHERE s.id = %(show_id)s AND s.status = 'scheduled'
ON CONFLICT (show_id) DO UPDATE SET
  opens_at = CASE WHEN onsales.shuffled THEN onsales.opens_at ELSE EXCLUDED.opens_at END,
  waiting_room = EXCLUDED.waiting_room, window_seconds = EXCLUDED.window_seconds,
  max_admit_per_second = EXCLUDED.max_admit_per_second
RETURNING show_id
"""

MOVIE_SHOWS = """
SELECT id FROM shows WHERE movie_id = %(movie_id)s AND status = 'scheduled' AND starts_at > %(now)s
ORDER BY starts_at
"""

DROP_ONSALE = "DELETE FROM onsales WHERE show_id = %(show_id)s"

# The live figures of a show's on-sale (all NULL when it has none): its row, and its seats
# counted by the availability rule.
ONSALE = """
SELECT s.id AS show_id, o.opens_at, coalesce(o.waiting_room, false) AS waiting_room,
  coalesce(o.window_seconds, 0) AS window_seconds,
  coalesce(o.max_admit_per_second, 0) AS max_admit_per_second,
  coalesce(o.shuffled, false) AS shuffled, coalesce(o.early_count, 0) AS early_count,
  coalesce(o.next_rank, 0) AS next_rank, coalesce(o.admitted_through, 0) AS admitted_through,
  coalesce(o.admit_rate, 0) AS admit_rate, o.sold_out_at,
  (SELECT count(*) FROM show_seats WHERE show_id = s.id AND status = 'sold') AS sold,
  (SELECT count(*) FROM show_seats WHERE show_id = s.id
     AND (status = 'free' OR (status = 'held' AND held_until <= %(now)s))) AS free
FROM shows s LEFT JOIN onsales o ON o.show_id = s.id WHERE s.id = %(show_id)s
"""

JOIN = "SELECT joined FROM join_line(%(show_id)s, %(user_id)s, %(now)s)"

# A customer's place: the on-sale's counters and the customer's entry, in one index lookup.
PLACE = """
SELECT o.opens_at, o.waiting_room, o.shuffled, o.early_count, o.next_rank, o.admitted_through,
       o.admit_rate, o.sold_out_at, e.user_id IS NOT NULL AS in_line, e.rank, e.admitted_at,
       e.expires_at
FROM onsales o LEFT JOIN line_entries e ON e.show_id = o.show_id AND e.user_id = %(user_id)s
WHERE o.show_id = %(show_id)s
"""

# A window that is over frees its place: joining again queues at the end.
LEAVE_EXPIRED = """
DELETE FROM line_entries
WHERE show_id = %(show_id)s AND user_id = %(user_id)s AND expires_at <= %(now)s
"""

# A customer who gives up: an admitted one frees the room for the next (the admitter paces on
# admitted customers who hold nothing yet); a waiting one leaves a gap that admission skips.
LEAVE = "DELETE FROM line_entries WHERE show_id = %(show_id)s AND user_id = %(user_id)s"

WAITING_ROOMS = "SELECT show_id FROM onsales WHERE waiting_room"

SECRET = "SELECT secret FROM onsale_secret"  # noqa: S105 (a query, not a password)

# The admitter's work list: open waiting rooms not sold out.
OPEN_ROOMS = """
SELECT show_id FROM onsales
WHERE waiting_room AND opens_at <= %(now)s AND sold_out_at IS NULL
"""

# One replica admits for a show at a time: the others skip the locked row.
LOCK_ROOM = """
SELECT shuffled, next_rank, admitted_through, window_seconds, max_admit_per_second
FROM onsales WHERE show_id = %(show_id)s AND sold_out_at IS NULL FOR UPDATE SKIP LOCKED
"""

SHUFFLE = "SELECT shuffle_line(%(show_id)s) AS ranked"

# What admission is paced by: seats free and held now, holds made in the last 10 s, and the
# admitted customers whose window is open and who hold nothing yet.
ROOM_LOAD = """
SELECT
  (SELECT count(*) FROM show_seats WHERE show_id = %(show_id)s
     AND (status = 'free' OR (status = 'held' AND held_until <= %(now)s))) AS free,
  (SELECT count(*) FROM show_seats WHERE show_id = %(show_id)s
     AND status = 'held' AND held_until > %(now)s) AS held,
  (SELECT count(*) FROM reservations WHERE show_id = %(show_id)s AND channel = 'online'
     AND created_at > %(now)s - interval '10 seconds') AS recent_holds,
  (SELECT count(*) FROM line_entries e WHERE e.show_id = %(show_id)s
     AND e.admitted_at IS NOT NULL AND e.expires_at > %(now)s
     AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.show_id = %(show_id)s
       AND r.user_id = e.user_id AND r.created_at >= e.admitted_at
       AND r.status IN ('held', 'confirmed'))) AS idle_admitted
"""

ADMIT = """
WITH admitted AS (
  UPDATE line_entries SET admitted_at = %(now)s,
    expires_at = %(now)s + make_interval(secs => %(window_seconds)s)
  WHERE show_id = %(show_id)s AND rank > %(after)s AND rank <= %(through)s AND admitted_at IS NULL
  RETURNING 1)
UPDATE onsales SET admitted_through = %(through)s, admit_rate = %(rate)s
WHERE show_id = %(show_id)s
RETURNING (SELECT count(*) FROM admitted) AS admitted
"""

SOLD_OUT = """
UPDATE onsales SET sold_out_at = %(now)s, admit_rate = 0
WHERE show_id = %(show_id)s AND sold_out_at IS NULL
"""
