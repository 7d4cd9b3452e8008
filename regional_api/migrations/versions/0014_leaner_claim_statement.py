"""`claim_seats` in fewer plan nodes, every invariant kept (issue 21, "pglean").

PostgreSQL starts and ends every node of a statement's plan on every call, and a one-seat hold
spent about half of its instructions in `claim_seats`' own statement. Its body is 0012's with:

- the all-free test as `NOT EXISTS` of a requested seat that is not free (an index probe that
  stops at the first such seat, without an aggregate); the claim still locks seats only when none
  it asked for is taken in its snapshot, and claims them only when it locked as many as it asked
  (so an unknown seat id, which the test no longer sees, is still refused, writing nothing);
- the show's state and the customer's seat cap decided before any seat is locked, as one-time
  filters of the locking scan (the `ready` CTE, an aggregate over the locked rows, is gone): a
  claim refused for them locks nothing. The cap is counted in the same statement as before,
  under the (customer, show) advisory lock taken just before it;
- no `ORDER BY` before `FOR UPDATE SKIP LOCKED`: a claim never waits for a row lock, so the
  order of its locks cannot deadlock, and the sort node goes;
- the update still finds each locked seat by its key, not by the `ctid` the lock returned: a
  seat updated by another transaction after this statement's snapshot is locked in a version
  the snapshot cannot see, and a write by `ctid` would skip it (claiming fewer seats than it
  locked; tests/regional_api/payments/test_payment_races.py shows the same for a payment);
- the movie's title as a scalar subquery of the show, not a hash join of `movies`.
- `enable_seqscan = off` for the function's statements: every one of them looks rows up by a
  key, and on small tables (a region's catalog of a few dozen shows and movies) the planner
  preferred reading `shows` and `movies` whole, also in the foreign-key check of the
  reservation's show, which runs inside the function; with an index there is nothing else it
  changes (a table without one is still read whole).

Figures: docs/benchmarks/floor.md, "Eighth round (pglean)".

Revision ID: 0014
Revises: 0013
"""

from importlib.machinery import SourceFileLoader
from pathlib import Path

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_FREE = "(ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= p_now))"

UPGRADE = f"""
CREATE OR REPLACE FUNCTION claim_seats(
    p_show_id text, p_seat_ids bigint[], p_rid text, p_user_id text, p_email text,
    p_channel text, p_now timestamptz, p_deadline timestamptz, p_cap integer)
RETURNS TABLE (won boolean, seat_id bigint, label text, row_label text, number integer,
               seat_type text, price_minor integer, free boolean, grid_row integer,
               grid_col integer, cinema_id text, currency text, starts_at timestamptz,
               title text)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
#variable_conflict use_column
BEGIN
  -- Shared against a show cancellation (exclusive), then per customer and show: for the seat
  -- cap, and so that a concurrent duplicate of a keyed hold waits for its first.
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('show:' || p_show_id, 0)),
          CASE WHEN p_user_id IS NOT NULL
               THEN pg_advisory_xact_lock(hashtextextended(p_user_id || ':' || p_show_id, 0))
          END;
  -- If the show is on sale, the cap allows the seats and none of them is taken in this
  -- snapshot, lock the requested rows that are free by the rule, skipping rows another
  -- transaction has locked (a claim in flight: fewer rows, refused at once instead of waiting
  -- for its commit); only if every requested row was locked, claim them, record them as the
  -- reservation's seats and insert the reservation; answer the claimed seats.
  RETURN QUERY
  WITH sh AS (
    SELECT s.status, s.starts_at, s.cinema_id, s.currency,
           (SELECT m.title FROM movies m WHERE m.id = s.movie_id) AS title
    FROM shows s WHERE s.id = p_show_id),
  target AS (
    SELECT ss.seat_id FROM show_seats ss
    WHERE ss.show_id = p_show_id AND ss.seat_id = ANY(p_seat_ids) AND {_FREE}
      AND NOT EXISTS (SELECT FROM show_seats ss
                      WHERE ss.show_id = p_show_id AND ss.seat_id = ANY(p_seat_ids)
                        AND NOT {_FREE})
      AND coalesce((SELECT sh.status = 'scheduled' AND sh.starts_at > p_now FROM sh), false)
      AND (p_cap IS NULL OR
           (SELECT count(*) FROM reservations r
              JOIN reservation_seats rs ON rs.reservation_id = r.id
            WHERE r.user_id = p_user_id AND r.show_id = p_show_id
              AND (r.status = 'confirmed'
                   OR (r.status = 'held' AND r.hold_expires_at > p_now)))
           + cardinality(p_seat_ids) <= p_cap)
    FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE show_seats s SET status = 'held', reservation_id = p_rid, held_until = p_deadline
    FROM target t
    WHERE (SELECT count(*) FROM target) = cardinality(p_seat_ids)
      AND s.show_id = p_show_id AND s.seat_id = t.seat_id
      AND (s.status = 'free' OR (s.status = 'held' AND s.held_until <= p_now))
    RETURNING s.seat_id, s.seat_type, s.price_minor),
  recorded AS (
    INSERT INTO reservation_seats (reservation_id, show_id, seat_id, seat_type, price_minor)
    SELECT p_rid, p_show_id, c.seat_id, c.seat_type, c.price_minor FROM claimed c),
  reservation AS (
    INSERT INTO reservations (id, show_id, cinema_id, user_id, customer_email, channel,
                              status, hold_expires_at, amount_minor, currency, created_at)
    SELECT p_rid, p_show_id, sh.cinema_id, p_user_id, p_email, p_channel, 'held', p_deadline,
           (SELECT sum(c.price_minor) FROM claimed c), sh.currency, p_now
    FROM sh WHERE EXISTS (SELECT FROM claimed))
  SELECT true, c.seat_id, st.label, st.row_label, st.number, c.seat_type, c.price_minor, true,
         st.grid_row, st.grid_col, sh.cinema_id, sh.currency::text, sh.starts_at, sh.title
  FROM claimed c JOIN seats st ON st.id = c.seat_id, sh
  ORDER BY st.grid_row, st.grid_col;
  IF FOUND THEN
    RETURN;
  END IF;
  -- Refused: nothing was written. For a scheduled show, the requested seats, each marked free
  -- by the rule or not (a seat skipped as locked shows free); for any other show, no row.
  RETURN QUERY
  SELECT false, ss.seat_id, st.label, st.row_label, st.number, ss.seat_type, ss.price_minor,
         {_FREE},
         st.grid_row, st.grid_col, sh.cinema_id, sh.currency::text, sh.starts_at,
         (SELECT m.title FROM movies m WHERE m.id = sh.movie_id)
  FROM show_seats ss JOIN seats st ON st.id = ss.seat_id, shows sh
  WHERE ss.show_id = p_show_id AND ss.seat_id = ANY(p_seat_ids) AND sh.id = p_show_id
    AND sh.status = 'scheduled'
  ORDER BY st.grid_row, st.grid_col;
END
$fn$;
"""  # noqa: S608 - constant fragments only


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    # 0012's function (0013 did not change it).
    path = str(Path(__file__).with_name("0012_claim_skips_claimed_seats.py"))
    op.execute(SourceFileLoader("m0012", path).load_module().UPGRADE)
