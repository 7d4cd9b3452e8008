"""A join of a waiting room's line in one statement: leave an expired window, join, read the place.

An opening brings thousands of joins within seconds (`benchmarks/onsale_line.py`: 1,000 in the
2 s after it, while the first admitted customers hold). A join was three round trips (drop the
customer's expired entry, `join_line`, read the place); `join_and_place` does all three in one
call, with the plans of its statements kept per connection (`plan_cache_mode =
force_generic_plan`, as `claim_seats`), and answers the row the place is read from.

Admission is paced in the on-sale's row (`admit_credit`, `paced_at`: customers that may still be
admitted, and when the pace last ran, by the database's clock) rather than in each replica's
memory: every replica ticks, and with a credit each they admitted up to once per replica per
tick, past the configured ceiling.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE onsales ADD COLUMN admit_credit real NOT NULL DEFAULT 0,
                    ADD COLUMN paced_at timestamptz;

CREATE FUNCTION join_and_place(p_show_id text, p_user_id text, p_now timestamptz)
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
  SELECT o.opens_at, o.waiting_room, o.shuffled, o.early_count, o.next_rank,
         o.admitted_through, o.admit_rate, o.max_admit_per_second, o.sold_out_at,
         e.user_id IS NOT NULL, e.rank, e.admitted_at, e.expires_at
  FROM onsales o LEFT JOIN line_entries e ON e.show_id = o.show_id AND e.user_id = p_user_id
  WHERE o.show_id = p_show_id;
END
$fn$;
"""

DOWNGRADE = """
DROP FUNCTION join_and_place(text, text, timestamptz);
ALTER TABLE onsales DROP COLUMN admit_credit, DROP COLUMN paced_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
