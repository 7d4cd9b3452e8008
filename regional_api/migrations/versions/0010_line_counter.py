"""Joins that do not queue behind each other: a line's count in a sequence, not in its row.

Every join took the on-sale's row lock (`FOR UPDATE`) and bumped `early_count` or `next_rank`
in it, so joins ran one at a time, each holding the lock through its commit's WAL flush. In
the 20,000-customer rush (`benchmarks/onsale_line.py --variant large --pg-stats`, load 14) that
lock wait was 85 ms a join, 957 customers joined in a minute and the router refused the rest.
Now each on-sale has a sequence of its own (`line_rank_seq`, made and dropped with its row):
before the draw a join counts itself in it (the line's length), after the draw a join's rank
is its `nextval`, with no row lock, so joins run side by side. Ranks still follow the order in
which joins reach the database; a join that fails after taking a number leaves a gap, which
admission already skips (as it skips a customer who left).

The draw still excludes the joins before the opening: every join holds `FOR KEY SHARE` on the
row before it takes a number and `shuffle_line` takes `FOR UPDATE`, so it waits for those in
flight and every entry it sees is ranked (a drop of the on-sale waits for them alike); it sets the sequence to the number it ranked. The admitter locks the row `FOR NO KEY
UPDATE` (joins' `KEY SHARE` from the foreign key does not wait for it, nor it for them) and
reads the line's count from the sequence; a rank taken by a join not yet committed when its
tick admitted past it is admitted by the next tick (`ADMIT` takes every unadmitted rank up to
`admitted_through`).

The admitter's count of admitted customers who hold nothing reads a partial index of the
admitted entries instead of every entry of the show.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE FUNCTION line_rank_seq(p_show_id text) RETURNS regclass
LANGUAGE sql STABLE AS $fn$ SELECT ('line_rank_' || md5(p_show_id))::regclass $fn$;

-- Customers counted in a line: before the draw its joins, after it the last rank given.
CREATE FUNCTION line_count(p_show_id text) RETURNS integer
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(pg_sequence_last_value(line_rank_seq(p_show_id)), 0)::integer
$fn$;

-- A line's sequence, started at its count (a row written with one, as a restore would).
CREATE FUNCTION start_line_counter(p_show_id text, p_counted integer) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I AS integer', 'line_rank_' || md5(p_show_id));
  PERFORM setval(line_rank_seq(p_show_id), greatest(p_counted, 1), p_counted > 0);
END
$fn$;

CREATE FUNCTION onsale_line_counter() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM start_line_counter(
      NEW.show_id, CASE WHEN NEW.shuffled THEN NEW.next_rank ELSE NEW.early_count END);
    RETURN NEW;
  END IF;
  EXECUTE format('DROP SEQUENCE IF EXISTS %I', 'line_rank_' || md5(OLD.show_id));
  RETURN OLD;
END
$fn$;

CREATE TRIGGER onsales_line_counter AFTER INSERT OR DELETE ON onsales
FOR EACH ROW EXECUTE FUNCTION onsale_line_counter();

-- The admitter's room (ROOM_LOAD, every tick) counts the admitted customers who hold nothing:
-- through the primary key it read every entry of the show (6.8 ms and 575 buffers a tick with
-- 20,000 in line); the admitted ones are a few hundred.
CREATE INDEX ix_line_entries_admitted ON line_entries (show_id, expires_at)
WHERE admitted_at IS NOT NULL;

SELECT start_line_counter(show_id, CASE WHEN shuffled THEN next_rank ELSE early_count END)
FROM onsales;

-- Rank the customers who came before the opening in random order, once. FOR UPDATE waits for
-- the joins before the opening still in flight (they hold FOR KEY SHARE).
CREATE OR REPLACE FUNCTION shuffle_line(p_show_id text) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE ranked integer; drawn boolean;
BEGIN
  SELECT shuffled INTO drawn FROM onsales WHERE show_id = p_show_id FOR UPDATE;
  IF drawn THEN RETURN line_count(p_show_id); END IF;
  WITH r AS (
    SELECT user_id, row_number() OVER (ORDER BY random()) AS rn
    FROM line_entries WHERE show_id = p_show_id AND rank IS NULL)
  UPDATE line_entries e SET rank = r.rn FROM r
  WHERE e.show_id = p_show_id AND e.user_id = r.user_id;
  GET DIAGNOSTICS ranked = ROW_COUNT;
  UPDATE onsales SET shuffled = true, next_rank = ranked, early_count = ranked
  WHERE show_id = p_show_id;
  PERFORM setval(line_rank_seq(p_show_id), greatest(ranked, 1), ranked > 0);
  RETURN ranked;
END
$fn$;

-- Join the line once (a customer who comes back keeps the place): before the opening unranked,
-- after it at the end of the line, numbered by the line's sequence; no join waits for another.
CREATE OR REPLACE FUNCTION join_line(p_show_id text, p_user_id text, p_now timestamptz)
RETURNS TABLE (joined boolean)
LANGUAGE plpgsql AS $fn$
DECLARE o onsales%ROWTYPE; added boolean;
BEGIN
  PERFORM 1 FROM line_entries WHERE show_id = p_show_id AND user_id = p_user_id;
  IF FOUND THEN RETURN QUERY SELECT false; RETURN; END IF;
  SELECT * INTO o FROM onsales WHERE show_id = p_show_id;  -- no lock: which way to go
  IF NOT FOUND THEN RETURN; END IF;
  IF NOT o.shuffled AND p_now >= o.opens_at THEN
    PERFORM shuffle_line(p_show_id);  -- the first join after the opening draws the line
  END IF;
  -- KEY SHARE (taken before any number): the draw and a drop of the on-sale wait for this join.
  SELECT * INTO o FROM onsales WHERE show_id = p_show_id FOR KEY SHARE;
  IF NOT FOUND THEN RETURN; END IF;
  IF NOT o.shuffled THEN
    INSERT INTO line_entries (show_id, user_id, joined_at) VALUES (p_show_id, p_user_id, p_now)
    ON CONFLICT DO NOTHING;
    added := FOUND;
    IF added THEN
      PERFORM nextval(line_rank_seq(p_show_id));
    END IF;
    RETURN QUERY SELECT added;
    RETURN;
  END IF;
  INSERT INTO line_entries (show_id, user_id, joined_at, rank)
  VALUES (p_show_id, p_user_id, p_now, nextval(line_rank_seq(p_show_id)))
  ON CONFLICT DO NOTHING;
  RETURN QUERY SELECT FOUND;
END
$fn$;

CREATE OR REPLACE FUNCTION join_and_place(p_show_id text, p_user_id text, p_now timestamptz)
RETURNS TABLE (
    opens_at timestamptz, waiting_room boolean, shuffled boolean, early_count integer,
    next_rank integer, admitted_through integer, admit_rate real, max_admit_per_second real,
    sold_out_at timestamptz, in_line boolean, rank integer, admitted_at timestamptz,
    expires_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
#variable_conflict use_column
BEGIN
  -- A window that is over frees its place: joining again queues at the end.
  DELETE FROM line_entries
  WHERE show_id = p_show_id AND user_id = p_user_id AND expires_at <= p_now;
  PERFORM join_line(p_show_id, p_user_id, p_now);
  RETURN QUERY
  SELECT o.opens_at, o.waiting_room, o.shuffled,
         CASE WHEN o.shuffled THEN o.early_count ELSE line_count(o.show_id) END,
         CASE WHEN o.shuffled THEN line_count(o.show_id) ELSE 0 END,
         o.admitted_through, o.admit_rate, o.max_admit_per_second, o.sold_out_at,
         e.user_id IS NOT NULL, e.rank, e.admitted_at, e.expires_at
  FROM onsales o LEFT JOIN line_entries e ON e.show_id = o.show_id AND e.user_id = p_user_id
  WHERE o.show_id = p_show_id;
END
$fn$;
"""

DOWNGRADE = """
DROP INDEX ix_line_entries_admitted;
CREATE OR REPLACE FUNCTION join_and_place(p_show_id text, p_user_id text, p_now timestamptz)
RETURNS TABLE (
    opens_at timestamptz, waiting_room boolean, shuffled boolean, early_count integer,
    next_rank integer, admitted_through integer, admit_rate real, max_admit_per_second real,
    sold_out_at timestamptz, in_line boolean, rank integer, admitted_at timestamptz,
    expires_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
#variable_conflict use_column
BEGIN
  DELETE FROM line_entries
  WHERE show_id = p_show_id AND user_id = p_user_id AND expires_at <= p_now;
  PERFORM join_line(p_show_id, p_user_id, p_now);
  RETURN QUERY
  SELECT o.opens_at, o.waiting_room, o.shuffled, o.early_count, o.next_rank,
         o.admitted_through, o.admit_rate, o.max_admit_per_second, o.sold_out_at,
         e.user_id IS NOT NULL, e.rank, e.admitted_at, e.expires_at
  FROM onsales o LEFT JOIN line_entries e ON e.show_id = o.show_id AND e.user_id = p_user_id
  WHERE o.show_id = p_show_id;
END
$fn$;

CREATE OR REPLACE FUNCTION join_line(p_show_id text, p_user_id text, p_now timestamptz)
RETURNS TABLE (joined boolean)
LANGUAGE plpgsql AS $fn$
DECLARE o onsales%ROWTYPE;
BEGIN
  PERFORM 1 FROM line_entries WHERE show_id = p_show_id AND user_id = p_user_id;
  IF FOUND THEN RETURN QUERY SELECT false; RETURN; END IF;
  SELECT * INTO o FROM onsales WHERE show_id = p_show_id FOR UPDATE;
  IF NOT FOUND THEN RETURN; END IF;
  IF p_now < o.opens_at THEN
    INSERT INTO line_entries (show_id, user_id, joined_at) VALUES (p_show_id, p_user_id, p_now)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
      UPDATE onsales SET early_count = early_count + 1 WHERE show_id = p_show_id;
    END IF;
    RETURN QUERY SELECT FOUND;
    RETURN;
  END IF;
  IF NOT o.shuffled THEN
    PERFORM shuffle_line(p_show_id);
  END IF;
  INSERT INTO line_entries (show_id, user_id, joined_at, rank)
  SELECT p_show_id, p_user_id, p_now, next_rank + 1 FROM onsales WHERE show_id = p_show_id
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    UPDATE onsales SET next_rank = next_rank + 1 WHERE show_id = p_show_id;
  END IF;
  RETURN QUERY SELECT FOUND;
END
$fn$;

CREATE OR REPLACE FUNCTION shuffle_line(p_show_id text) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE ranked integer;
BEGIN
  WITH r AS (
    SELECT user_id, row_number() OVER (ORDER BY random()) AS rn
    FROM line_entries WHERE show_id = p_show_id AND rank IS NULL)
  UPDATE line_entries e SET rank = r.rn FROM r
  WHERE e.show_id = p_show_id AND e.user_id = r.user_id;
  GET DIAGNOSTICS ranked = ROW_COUNT;
  UPDATE onsales SET shuffled = true, next_rank = ranked WHERE show_id = p_show_id;
  RETURN ranked;
END
$fn$;

UPDATE onsales SET early_count = line_count(show_id) WHERE NOT shuffled;
UPDATE onsales SET next_rank = line_count(show_id) WHERE shuffled;
DROP TRIGGER onsales_line_counter ON onsales;
DO $do$
DECLARE s text;
BEGIN
  FOR s IN SELECT show_id FROM onsales LOOP
    EXECUTE format('DROP SEQUENCE IF EXISTS %I', 'line_rank_' || md5(s));
  END LOOP;
END
$do$;
DROP FUNCTION onsale_line_counter();
DROP FUNCTION start_line_counter(text, integer);
DROP FUNCTION line_count(text);
DROP FUNCTION line_rank_seq(text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
