"""A payment is an intent first: recorded, then charged with no lock held, then settled.

The provider is called between two short transactions, so a payment can be `pending` (charge in
flight, or its replica died mid-charge) and `refunding` (money moved for seats that could not be
sold, or a timed-out charge that must be voided) before it ends `completed`, `failed` or
`refunded`. At most one payment per reservation is pending or completed: a second charge of the
same seats is impossible while the first is in flight.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('pending', 'completed', 'failed', 'refunding', 'refunded'));
DROP INDEX uq_payments_completed_per_reservation;
CREATE UNIQUE INDEX uq_payments_open_per_reservation
    ON payments (reservation_id) WHERE status IN ('pending', 'completed');
-- The reconciler's work list: payments whose outcome is not settled yet.
CREATE INDEX ix_payments_unsettled ON payments (created_at)
    WHERE status IN ('pending', 'refunding');
"""

DOWNGRADE = """
DROP INDEX ix_payments_unsettled, uq_payments_open_per_reservation;
CREATE UNIQUE INDEX uq_payments_completed_per_reservation
    ON payments (reservation_id) WHERE status = 'completed';
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
UPDATE payments SET status = 'failed' WHERE status NOT IN ('pending', 'completed', 'failed');
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('pending', 'completed', 'failed'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
