"""Announced on-sales and their waiting room: a fair line in front of a hot show's seats.

`onsales` marks a show's opening; customers who arrive before it wait unranked and are put in
random order at the opening (`shuffle_line`), later arrivals are ranked in arrival order
(`join_line`). Ranks are dense, so a customer's place in line is `rank - admitted_through`
with no count; the admitter moves `admitted_through` forward under the on-sale's row lock, so
nobody is admitted twice, by any number of replicas. The passes' signing secret lives here
too, so every replica of the region shares it without configuration.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE onsales (
    show_id          text PRIMARY KEY REFERENCES shows (id) ON DELETE CASCADE,
    opens_at         timestamptz NOT NULL,
    waiting_room     boolean NOT NULL DEFAULT true,
    window_seconds   integer NOT NULL DEFAULT 600 CHECK (window_seconds BETWEEN 60 AND 7200),
    max_admit_per_second real NOT NULL DEFAULT 20 CHECK (max_admit_per_second > 0),
    shuffled         boolean NOT NULL DEFAULT false,
    early_count      integer NOT NULL DEFAULT 0 CHECK (early_count >= 0),
    next_rank        integer NOT NULL DEFAULT 0 CHECK (next_rank >= 0),
    admitted_through integer NOT NULL DEFAULT 0 CHECK (admitted_through >= 0),
    admit_rate       real NOT NULL DEFAULT 0,
    sold_out_at      timestamptz,
    created_at       timestamptz NOT NULL,
    CONSTRAINT ck_onsales_admitted_ranked CHECK (admitted_through <= next_rank)
);

CREATE TABLE line_entries (
    show_id     text NOT NULL REFERENCES onsales (show_id) ON DELETE CASCADE,
    user_id     text NOT NULL,
    joined_at   timestamptz NOT NULL,
    rank        integer,
    admitted_at timestamptz,
    expires_at  timestamptz,
    PRIMARY KEY (show_id, user_id),
    CONSTRAINT ck_line_entries_admitted_ranked CHECK (admitted_at IS NULL OR rank IS NOT NULL)
);
-- One customer per place: the admission order is the rank order.
CREATE UNIQUE INDEX uq_line_entries_rank ON line_entries (show_id, rank);

CREATE TABLE onsale_secret (
    id     boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret text NOT NULL
);
INSERT INTO onsale_secret (secret)
VALUES (md5(random()::text || clock_timestamp()::text) || md5(random()::text || pg_backend_pid()::text));

-- Rank the customers who came before the opening in random order, once (the caller holds the
-- on-sale's row lock).
CREATE FUNCTION shuffle_line(p_show_id text) RETURNS integer
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

-- Join the line once (a customer who comes back keeps the place): before the opening unranked,
-- after it at the end of the line.
CREATE FUNCTION join_line(p_show_id text, p_user_id text, p_now timestamptz)
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
"""

DOWNGRADE = """
DROP FUNCTION join_line(text, text, timestamptz);
DROP FUNCTION shuffle_line(text);
DROP TABLE onsale_secret, line_entries, onsales;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
