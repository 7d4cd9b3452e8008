"""When an admitted customer first heard its pass: the in-flight cap counts from there.

The admitter lets at most K admitted customers be on their way to a hold. Counted from their
admission, a customer whose news was slow to reach it (its ask queued behind thousands of
joins at a shared proxy) kept its place on the way for the whole window while sending nothing
to the region: at 20,000 customers the first ten admitted held the room shut for 5 s at a
time (docs/benchmarks/onsale-line.md, "Eleventh round"). `passed_at` is stamped by the first
ask that returns the customer's pass; the cap counts a customer from it, and one that has not
asked yet only for a short time after its admission. A nullable column: no table rewrite.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE line_entries ADD COLUMN passed_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE line_entries DROP COLUMN passed_at")
