"""The SQL of on-sales and their waiting room (psycopg; the line functions are in 0006-0011)."""

# A line's counts live in its sequence (migration 0010): before the draw the joins so far, after
# it the last rank given; the row keeps the count of the draw (`early_count`). ONSALE, PLACE
# and WAITING_ROOMS read them so, from an on-sale `o`.
_COUNTS = """CASE WHEN o.shuffled THEN o.early_count ELSE line_count(o.show_id) END AS early_count,
  CASE WHEN o.shuffled THEN line_count(o.show_id) ELSE 0 END AS next_rank"""

# How far admission has gone in the tickets' line numbers (`line_admitted_mark`, migration 0011).
_MARK = (
    "line_admitted_mark(o.show_id, o.shuffled, o.early_count, o.admitted_through) AS admitted_mark"
)

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
ONSALE = f"""
SELECT s.id AS show_id, o.opens_at, coalesce(o.waiting_room, false) AS waiting_room,
  coalesce(o.window_seconds, 0) AS window_seconds,
  coalesce(o.max_admit_per_second, 0) AS max_admit_per_second,
  coalesce(o.shuffled, false) AS shuffled, {_COUNTS},
  coalesce(o.admitted_through, 0) AS admitted_through, {_MARK},
  coalesce(o.admit_rate, 0) AS admit_rate, o.sold_out_at,
  (SELECT count(*) FROM show_seats WHERE show_id = s.id AND status = 'sold') AS sold,
  (SELECT count(*) FROM show_seats WHERE show_id = s.id
     AND (status = 'free' OR (status = 'held' AND held_until <= %(now)s))) AS free
FROM shows s LEFT JOIN onsales o ON o.show_id = s.id WHERE s.id = %(show_id)s
"""  # noqa: S608 - constant fragments only

# A join in one round trip (migration 0008): an expired window's entry goes, the customer joins
# once, and the place is read as PLACE reads it.
JOIN = "SELECT * FROM join_and_place(%(show_id)s, %(user_id)s, %(now)s)"

# A batch of joins of one show in one statement (`onsale/batches.py`): JOIN for each customer,
# called in arrival order, each with its own time; one row per customer in that order (all NULL
# when the show has no on-sale). One transaction: the draw waits for the whole batch.
JOIN_MANY = """
SELECT j.* FROM unnest(%(user_ids)s::text[], %(nows)s::timestamptz[]) WITH ORDINALITY
  AS u(user_id, at, i)
LEFT JOIN LATERAL join_and_place(%(show_id)s, u.user_id, u.at) j ON true
ORDER BY u.i
"""

# A customer's place: the on-sale's counters and the customer's entry, in one index lookup.
PLACE = f"""
SELECT o.opens_at, o.waiting_room, o.shuffled, {_COUNTS}, o.admitted_through,
       o.admit_rate, o.max_admit_per_second, o.sold_out_at, e.user_id IS NOT NULL AS in_line,
       e.rank, e.admitted_at, e.expires_at, e.draw_key
FROM onsales o LEFT JOIN line_entries e ON e.show_id = o.show_id AND e.user_id = %(user_id)s
WHERE o.show_id = %(show_id)s
"""  # noqa: S608 - constant fragments only

# A customer who gives up: an admitted one frees the room for the next (the admitter paces on
# admitted customers who hold nothing yet); a waiting one leaves a gap that admission skips.
LEAVE = "DELETE FROM line_entries WHERE show_id = %(show_id)s AND user_id = %(user_id)s"

# Every replica's read of the waiting rooms and their counters, every 0.5 s (`onsale/rooms.py`):
# seats are counted only while the show is not sold out, by its (show_id, ...) key.
WAITING_ROOMS = f"""
SELECT o.show_id, o.opens_at, o.shuffled, {_COUNTS},
       o.admitted_through, {_MARK}, o.admit_rate, o.max_admit_per_second, o.sold_out_at,
       CASE WHEN o.sold_out_at IS NULL THEN
         (SELECT count(*) FROM show_seats ss
          WHERE ss.show_id = o.show_id AND ss.status IN ('free', 'held')) END AS unsold
FROM onsales o WHERE o.waiting_room
"""  # noqa: S608 - constant fragments only

SECRET = "SELECT secret FROM onsale_secret"  # noqa: S105 - a query, not a password

# The draw: the ranks `shuffle_line` gave the customers who came before the opening (ranks
# 1..early_count at most; a later arrival caught in the range is ranked already anyway).
DRAW = """
SELECT user_id, rank FROM line_entries WHERE show_id = %(show_id)s AND rank <= %(early)s
"""

# The admitter's work list: waiting rooms not sold out, open (`opens_at` passed) or still to
# open (the admitter wakes at the opening).
OPEN_ROOMS = """
SELECT show_id, opens_at FROM onsales WHERE waiting_room AND sold_out_at IS NULL
"""

# One replica admits for a show at a time: the others skip it this tick. An advisory lock of
# the admitters' own, not the row's: joins lock the row for a moment each, and skipping a locked
# row skipped every tick of a join storm (admission stalled for seconds at an opening).
ADMITTING = """
SELECT pg_try_advisory_xact_lock(hashtextextended('onsale-admit:' || %(show_id)s, 0)) AS mine
"""

# The row itself is then locked against the other writers of the row (not against joins, whose
# foreign key check holds KEY SHARE: migration 0010); the line's count is its sequence's.
# `elapsed`: seconds since admission was last paced, by the database's one clock (NULL at first).
LOCK_ROOM = """
SELECT shuffled, CASE WHEN shuffled THEN line_count(show_id) ELSE 0 END AS next_rank,
  admitted_through, window_seconds, max_admit_per_second, admit_credit,
  extract(epoch FROM now() - paced_at)::float8 AS elapsed
FROM onsales WHERE show_id = %(show_id)s AND sold_out_at IS NULL FOR NO KEY UPDATE
"""

SHUFFLE = "SELECT shuffle_line(%(show_id)s) AS ranked"

# What admission is paced by: seats free and held now, the seats taken (held or sold) and the
# reservations they belong to (the average party), holds made in the last `window` seconds, and
# the admitted customers whose window is open, admitted in the last `idle_seconds`, who hold
# nothing yet (`idle_admitted`; `in_flight`: those of them admitted in the last
# `in_flight_seconds`). The show's seats are read once, by its (show_id, ...) key.
ROOM_LOAD = """
SELECT seats.free, seats.held, seats.taken, seats.parties,
  (SELECT count(*) FROM reservations WHERE show_id = %(show_id)s AND channel = 'online'
     AND created_at > %(now)s - make_interval(secs => %(window)s)) AS recent_holds,
  idle.idle_admitted, idle.in_flight
FROM (SELECT count(*) AS idle_admitted,
    count(*) FILTER (WHERE e.admitted_at > %(now)s - make_interval(secs => %(in_flight_seconds)s))
      AS in_flight
  FROM line_entries e WHERE e.show_id = %(show_id)s
     AND e.admitted_at IS NOT NULL AND e.expires_at > %(now)s
     AND e.admitted_at > %(now)s - make_interval(secs => %(idle_seconds)s)
     AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.show_id = %(show_id)s
       AND r.user_id = e.user_id AND r.created_at >= e.admitted_at
       AND r.status IN ('held', 'confirmed'))) idle,
 (
  SELECT
    count(*) FILTER (WHERE status = 'free' OR (status = 'held' AND held_until <= %(now)s)) AS free,
    count(*) FILTER (WHERE status = 'held' AND held_until > %(now)s) AS held,
    count(*) FILTER (WHERE reservation_id IS NOT NULL
      AND (status = 'sold' OR (status = 'held' AND held_until > %(now)s))) AS taken,
    count(DISTINCT reservation_id) FILTER (WHERE reservation_id IS NOT NULL
      AND (status = 'sold' OR (status = 'held' AND held_until > %(now)s))) AS parties
  FROM show_seats WHERE show_id = %(show_id)s) seats
"""

# Admission times never go back along the line, even with another replica's clock ahead. Ranks
# at or before `after` still unadmitted were taken by joins that committed after the tick that
# admitted past them (joins do not wait for the admitter: migration 0010): they go in now.
ADMIT = """
WITH stamp AS (
  SELECT greatest(%(now)s, (SELECT admitted_at FROM line_entries
    WHERE show_id = %(show_id)s AND rank <= %(after)s AND admitted_at IS NOT NULL
    ORDER BY rank DESC LIMIT 1)) AS at),
admitted AS (
  UPDATE line_entries SET admitted_at = (SELECT at FROM stamp),
    expires_at = (SELECT at FROM stamp) + make_interval(secs => %(window_seconds)s)
  WHERE show_id = %(show_id)s AND rank <= %(through)s AND admitted_at IS NULL
  RETURNING 1)
UPDATE onsales SET admitted_through = %(through)s, admit_rate = %(rate)s,
  admit_credit = %(credit)s, paced_at = now(),
  next_rank = greatest(next_rank, line_count(show_id), %(through)s)
WHERE show_id = %(show_id)s
RETURNING (SELECT count(*) FROM admitted) AS admitted
"""

SOLD_OUT = """
UPDATE onsales SET sold_out_at = %(now)s, admit_rate = 0
WHERE show_id = %(show_id)s AND sold_out_at IS NULL
"""
