"""The draw by key: an early customer knows its line number from its join, and asks nothing at the draw.

A customer who joined before the opening got an unranked ticket and learned its rank only by
asking after the draw: a thousand asks at once, queued behind the opening's joins, so the
opening's first batch held 0.5-2.5 s late (docs/benchmarks/onsale-line.md, sixth round). Now a
join before the opening stores a draw key on its entry, in [1, 10^12): a SHA-256 of the
region's secret, the show and the customer, so the customer cannot choose or predict it, and
leaving and joining again gives the same key. The draw (`shuffle_line`) ranks the early entries
by (key, customer), still a random order unknown before the joins, instead of by `random()`.

An early customer's line number is its key; a later arrival's is 10^12 + its rank. Admission
still moves `admitted_through` along the ranks; the line's public state adds the mark those
numbers are compared with (`regional_api/onsale/statements.py`), so the router's watch tells an
early customer its turn as it tells a later one.

Entries of a line already drawn keep their ranks, and their key is their rank (the order is the
same); an early entry not drawn yet gets its key now.

`join_and_place` answers the entry's key too (its row type changes, so it is made again).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_PLACE_COLUMNS = """
    opens_at timestamptz, waiting_room boolean, shuffled boolean, early_count integer,
    next_rank integer, admitted_through integer, admit_rate real, max_admit_per_second real,
    sold_out_at timestamptz, in_line boolean, rank integer, admitted_at timestamptz,
    expires_at timestamptz"""

_JOIN_AND_PLACE = """
CREATE FUNCTION join_and_place(p_show_id text, p_user_id text, p_now timestamptz)
RETURNS TABLE ({columns})
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
         e.user_id IS NOT NULL, e.rank, e.admitted_at, e.expires_at{key}
  FROM onsales o LEFT JOIN line_entries e ON e.show_id = o.show_id AND e.user_id = p_user_id
  WHERE o.show_id = p_show_id;
END
$fn$;
"""

# join_line as in 0010; {key} is where the key of a join before the opening goes.
_JOIN_LINE = """
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
    INSERT INTO line_entries (show_id, user_id, joined_at{key_column})
    VALUES (p_show_id, p_user_id, p_now{key})
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
"""

# shuffle_line as in 0010; {order} ranks the early entries.
_SHUFFLE_LINE = """
CREATE OR REPLACE FUNCTION shuffle_line(p_show_id text) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE ranked integer; drawn boolean;
BEGIN
  SELECT shuffled INTO drawn FROM onsales WHERE show_id = p_show_id FOR UPDATE;
  IF drawn THEN RETURN line_count(p_show_id); END IF;
  WITH r AS (
    SELECT user_id, row_number() OVER (ORDER BY {order}) AS rn
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
"""

UPGRADE = f"""
ALTER TABLE line_entries ADD COLUMN draw_key bigint
  CONSTRAINT ck_line_entries_draw_key CHECK (draw_key BETWEEN 1 AND 999999999999);

-- A customer's key in a show's draw: 60 bits of a SHA-256 of the region's secret, the show and
-- the customer, in [1, 10^12). Not chosen, not predictable, the same on every join.
CREATE FUNCTION line_draw_key(p_show_id text, p_user_id text) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
  SELECT 1 + ('x' || left(encode(sha256(convert_to(
      s.secret || E'\\n' || 'draw' || E'\\n' || p_show_id || E'\\n' || p_user_id, 'UTF8')),
    'hex'), 15))::bit(60)::bigint % 999999999999
  FROM onsale_secret s
$fn$;

-- How far admission has gone in line numbers, from an on-sale's counters: while it is among the
-- early entries, the key of the last one admitted (one step back along the ranks' index), else
-- 10^12 + `admitted_through`. The replicas read it with the counters every 0.1 s.
CREATE FUNCTION line_admitted_mark(
    p_show_id text, p_shuffled boolean, p_early integer, p_through integer) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
  SELECT CASE WHEN NOT coalesce(p_shuffled, false) OR p_through = 0 THEN 0
    WHEN p_through >= p_early THEN 1000000000000 + p_through
    ELSE coalesce((SELECT e.draw_key FROM line_entries e WHERE e.show_id = p_show_id
      AND e.rank <= p_through ORDER BY e.rank DESC LIMIT 1), 0) END
$fn$;

UPDATE line_entries e SET draw_key = e.rank FROM onsales o
WHERE o.show_id = e.show_id AND o.shuffled AND e.rank <= o.early_count;
UPDATE line_entries SET draw_key = line_draw_key(show_id, user_id) WHERE rank IS NULL;

{_JOIN_LINE.format(key_column=", draw_key", key=", line_draw_key(p_show_id, p_user_id)")}
{_SHUFFLE_LINE.format(order="draw_key NULLS LAST, user_id")}
DROP FUNCTION join_and_place(text, text, timestamptz);
{_JOIN_AND_PLACE.format(columns=_PLACE_COLUMNS + ", draw_key bigint", key=", e.draw_key")}
"""  # noqa: S608 - constant fragments only

DOWNGRADE = f"""
DROP FUNCTION join_and_place(text, text, timestamptz);
{_JOIN_AND_PLACE.format(columns=_PLACE_COLUMNS, key="")}
{_SHUFFLE_LINE.format(order="random()")}
{_JOIN_LINE.format(key_column="", key="")}
DROP FUNCTION line_admitted_mark(text, boolean, integer, integer);
DROP FUNCTION line_draw_key(text, text);
ALTER TABLE line_entries DROP COLUMN draw_key;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
