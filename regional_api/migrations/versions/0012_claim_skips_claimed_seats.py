"""A claim never waits for another claim's seats: it is refused at once (issue 17, "bestfree").

`claim_seats` locked the requested seats free by the rule `FOR UPDATE`: a claim that met a seat
another claim had locked waited for that claim's commit (its WAL flush included), then found
the seat taken and was refused. In the on-sale rush every collision queued so, and
best-available, whose every concurrent request chose the same block, collided N ways at once.
Now the seats are locked `FOR UPDATE SKIP LOCKED`: a seat another transaction is claiming
(or paying, or sweeping) is skipped, so fewer seats are claimed than asked and the claim is
refused at once, writing nothing. And a claim locks seats only when every requested seat is
free by the rule in its snapshot, so a claim bound to be refused (a pair with a sold seat)
locks none: it neither makes others skip a seat it cannot use nor writes a lock to the WAL.

Skipping instead of waiting changes one thing for a retried write: a concurrent duplicate of a
keyed hold used to wait on its first's seats and then replay it. It now waits on the
(customer, show) lock, taken for every hold that names a customer (was: only a capped one),
so the duplicate's claim runs after its first committed and finds the key.

The refusal's rows are answered only for a scheduled show (as before they named the
requested seats, each free or not, and the show's start): the caller then knows that the show
was bookable but for its start, and reads the show again only when no row came back.

Figures: docs/benchmarks/onsale-line.md, "Seventh round (bestfree)".

Revision ID: 0012
Revises: 0011
"""

from importlib.machinery import SourceFileLoader
from pathlib import Path

from alembic import op

revision = "0012"
down_revision = "0011"
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
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $fn$
#variable_conflict use_column
BEGIN
  -- Shared against a show cancellation (exclusive), then per customer and show: for the seat
  -- cap, and so that a concurrent duplicate of a keyed hold waits for its first.
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('show:' || p_show_id, 0)),
          CASE WHEN p_user_id IS NOT NULL
               THEN pg_advisory_xact_lock(hashtextextended(p_user_id || ':' || p_show_id, 0))
          END;
  -- Lock the requested rows that are free by the rule, in seat order, only if all of them are
  -- free in this snapshot, skipping rows another transaction has locked (a claim in flight:
  -- fewer rows, refused at once instead of waiting for its commit); only if every row was
  -- locked, claim them, record them as the reservation's seats and insert the reservation;
  -- answer the claimed seats.
  RETURN QUERY
  WITH sh AS (
    SELECT s.status, s.starts_at, s.cinema_id, s.currency, m.title
    FROM shows s JOIN movies m ON m.id = s.movie_id WHERE s.id = p_show_id),
  target AS (
    SELECT ss.show_id, ss.seat_id FROM show_seats ss
    WHERE ss.show_id = p_show_id AND ss.seat_id = ANY(p_seat_ids) AND {_FREE}
      AND (SELECT count(*) FROM show_seats ss
           WHERE ss.show_id = p_show_id AND ss.seat_id = ANY(p_seat_ids) AND {_FREE})
          = cardinality(p_seat_ids)
    ORDER BY ss.seat_id FOR UPDATE SKIP LOCKED),
  ready AS (
    SELECT count(*) = cardinality(p_seat_ids)
       AND coalesce((SELECT sh.status = 'scheduled' AND sh.starts_at > p_now FROM sh), false)
       AND (p_cap IS NULL OR
            (SELECT count(*) FROM reservations r
               JOIN reservation_seats rs ON rs.reservation_id = r.id
             WHERE r.user_id = p_user_id AND r.show_id = p_show_id
               AND (r.status = 'confirmed'
                    OR (r.status = 'held' AND r.hold_expires_at > p_now)))
            + cardinality(p_seat_ids) <= p_cap) AS ok
    FROM target),
  claimed AS (
    UPDATE show_seats s SET status = 'held', reservation_id = p_rid, held_until = p_deadline
    FROM target t, ready
    WHERE ready.ok AND s.show_id = t.show_id AND s.seat_id = t.seat_id
      AND (s.status = 'free' OR (s.status = 'held' AND s.held_until <= p_now))
    RETURNING s.seat_id, s.seat_type, s.price_minor),
  recorded AS (
    INSERT INTO reservation_seats (reservation_id, show_id, seat_id, seat_type, price_minor)
    SELECT p_rid, p_show_id, c.seat_id, c.seat_type, c.price_minor FROM claimed c),
  reservation AS (
    INSERT INTO reservations (id, show_id, cinema_id, user_id, customer_email, channel,
                              status, hold_expires_at, amount_minor, currency, created_at)
    SELECT p_rid, p_show_id, sh.cinema_id, p_user_id, p_email, p_channel, 'held', p_deadline,
           coalesce((SELECT sum(c.price_minor) FROM claimed c), 0), sh.currency, p_now
    FROM ready, sh WHERE ready.ok)
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
         st.grid_row, st.grid_col, sh.cinema_id, sh.currency::text, sh.starts_at, m.title
  FROM show_seats ss JOIN seats st ON st.id = ss.seat_id, shows sh JOIN movies m ON m.id = sh.movie_id
  WHERE ss.show_id = p_show_id AND ss.seat_id = ANY(p_seat_ids) AND sh.id = p_show_id
    AND sh.status = 'scheduled'
  ORDER BY st.grid_row, st.grid_col;
END
$fn$;
"""  # noqa: S608 - constant fragments only


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    # 0009's function (its statements after the function are the schema changes it made).
    path = str(Path(__file__).with_name("0009_leaner_claim.py"))
    leaner = SourceFileLoader("m0009", path).load_module().UPGRADE
    op.execute(leaner.split("ALTER TABLE show_seats DROP CONSTRAINT")[0])
