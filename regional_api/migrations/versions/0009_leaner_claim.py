"""A hold's PostgreSQL CPU: the claim plans and runs only what a won claim needs.

`claim_seats` ran three statements (two lock PERFORMs, then one statement that also built the
refusal's answer), and every call started the executor for all of it: the refusal's branch
(a scan of the requested seats, a hash of the hall's seats, a subplan over the locked rows)
was initialised and torn down on every won claim, and the show was looked up three times.
Now the locks are one statement, the claim reads the show once (a CTE) and answers only its
won seats, and the refusal's answer is a second statement run only when nothing was claimed
(the seats stay locked by the claim until the call ends, so they are read as it left them).
The claim's rule, its locks, its order and its answer are unchanged.

`show_seats_status_check` goes: `ck_show_seats_state` allows exactly the same four statuses,
so every seat write evaluated (and parsed, once per statement) the same rule twice.

The seat cap's count (a customer's live seats in the show, in the claim and in `ACTIVE_SEATS`)
read every reservation of the show (`ix_reservations_show`) and every reservation of the
customer (`ix_reservations_user`) and intersected them: during an on-sale, thousands of rows
per hold. `ix_reservations_show_user` (show, customer) replaces `ix_reservations_show`: the count
reads the customer's reservations in that show only, every lookup by show still has its index,
and a reservation still has as many index entries.

A reservation's show and cinema were two foreign keys, so every hold ran two checks and locked
two rows (FOR KEY SHARE, a WAL record each): its show's, and its cinema's, shared by every hold
in the cinema. One key on (show, cinema) to the show's (id, cinema_id) checks both at once, and
more: the reservation's cinema is its show's (the claim copies it from the show), and the
cinema exists because the show's own key to it does.

Profile and figures: docs/benchmarks/floor.md "PostgreSQL CPU per hold and payment".

Revision ID: 0009
Revises: 0008
"""

from importlib.machinery import SourceFileLoader
from pathlib import Path

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CLAIM_SEATS = (
    "claim_seats(text, bigint[], text, text, text, text, timestamptz, timestamptz, integer)"
)
SIGNATURE = """claim_seats(
    p_show_id text, p_seat_ids bigint[], p_rid text, p_user_id text, p_email text,
    p_channel text, p_now timestamptz, p_deadline timestamptz, p_cap integer)
RETURNS TABLE (won boolean, seat_id bigint, label text, row_label text, number integer,
               seat_type text, price_minor integer, free boolean, grid_row integer,
               grid_col integer, cinema_id text, currency text, starts_at timestamptz,
               title text)"""

UPGRADE = f"""
CREATE OR REPLACE FUNCTION {SIGNATURE}
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $fn$
#variable_conflict use_column
BEGIN
  -- Shared against a show cancellation (exclusive), then per customer and show for the seat
  -- cap: one statement, evaluated left to right.
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('show:' || p_show_id, 0)),
          CASE WHEN p_cap IS NOT NULL AND p_user_id IS NOT NULL
               THEN pg_advisory_xact_lock(hashtextextended(p_user_id || ':' || p_show_id, 0))
          END;
  -- Lock the requested rows that are free by the rule, in seat order (rows visibly taken are
  -- never waited on), and only if all of them are, claim them, record them as the
  -- reservation's seats and insert the reservation; answer the claimed seats.
  RETURN QUERY
  WITH sh AS (
    SELECT s.status, s.starts_at, s.cinema_id, s.currency, m.title
    FROM shows s JOIN movies m ON m.id = s.movie_id WHERE s.id = p_show_id),
  target AS (
    SELECT ss.show_id, ss.seat_id FROM show_seats ss
    WHERE ss.show_id = p_show_id AND ss.seat_id = ANY(p_seat_ids)
      AND (ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= p_now))
    ORDER BY ss.seat_id FOR UPDATE),
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
  -- Refused: nothing was written; the requested seats, each marked free by the rule or not.
  RETURN QUERY
  SELECT false, ss.seat_id, st.label, st.row_label, st.number, ss.seat_type, ss.price_minor,
         ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= p_now),
         st.grid_row, st.grid_col, sh.cinema_id, sh.currency::text, sh.starts_at, m.title
  FROM show_seats ss JOIN seats st ON st.id = ss.seat_id, shows sh JOIN movies m ON m.id = sh.movie_id
  WHERE ss.show_id = p_show_id AND ss.seat_id = ANY(p_seat_ids) AND sh.id = p_show_id
  ORDER BY st.grid_row, st.grid_col;
END
$fn$;
ALTER TABLE show_seats DROP CONSTRAINT show_seats_status_check;
CREATE INDEX ix_reservations_show_user ON reservations (show_id, user_id);
DROP INDEX ix_reservations_show;
ALTER TABLE shows ADD CONSTRAINT uq_shows_id_cinema UNIQUE (id, cinema_id);
ALTER TABLE reservations
    ADD CONSTRAINT fk_reservations_show_cinema FOREIGN KEY (show_id, cinema_id)
        REFERENCES shows (id, cinema_id) NOT VALID,
    DROP CONSTRAINT reservations_show_id_fkey,
    DROP CONSTRAINT reservations_cinema_id_fkey;
ALTER TABLE reservations VALIDATE CONSTRAINT fk_reservations_show_cinema;
"""  # noqa: S608 - constant fragments only

DOWNGRADE = """
ALTER TABLE reservations
    ADD CONSTRAINT reservations_show_id_fkey FOREIGN KEY (show_id) REFERENCES shows (id),
    ADD CONSTRAINT reservations_cinema_id_fkey FOREIGN KEY (cinema_id) REFERENCES cinemas (id),
    DROP CONSTRAINT fk_reservations_show_cinema;
ALTER TABLE shows DROP CONSTRAINT uq_shows_id_cinema;
CREATE INDEX ix_reservations_show ON reservations (show_id);
DROP INDEX ix_reservations_show_user;
ALTER TABLE show_seats ADD CONSTRAINT show_seats_status_check
    CHECK (status IN ('free', 'held', 'sold', 'blocked'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
    # 0003's function, as 0005 left it (its plans kept per connection).
    claim = SourceFileLoader("m0003", str(Path(__file__).with_name("0003_claim_seats_function.py")))
    op.execute(claim.load_module().UPGRADE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute(f"ALTER FUNCTION {CLAIM_SEATS} SET plan_cache_mode = force_generic_plan")
