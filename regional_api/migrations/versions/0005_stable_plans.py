"""Plans that stay the same: generic plans for the claim, indexes that keep reads bounded.

`claim_seats` plans its statement once per connection (`plan_cache_mode =
force_generic_plan`): PostgreSQL otherwise replanned it on every call for the first five calls
of a connection, and for good when one-seat claims came first (0.7-0.9 ms of planning per
hold against 0.02 ms for the generic plan; docs/benchmarks/holds.md). The seat map finds a
hall's seats by `ix_seats_hall` instead of scanning every seat of every hall, opening a payment
finds the reservation's earlier payments by `ix_payments_reservation` instead of reading every
payment ever made, and a customer's
reservations are paged by key on `ix_reservations_user` (user, created_at, id): no sort, no
count over the whole history (docs/benchmarks/growth.md).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CLAIM_SEATS = (
    "claim_seats(text, bigint[], text, text, text, text, timestamptz, timestamptz, integer)"
)

UPGRADE = f"""
ALTER FUNCTION {CLAIM_SEATS} SET plan_cache_mode = force_generic_plan;
CREATE INDEX ix_seats_hall ON seats (hall_id);
CREATE INDEX ix_payments_reservation ON payments (reservation_id);
DROP INDEX ix_reservations_user;
CREATE INDEX ix_reservations_user ON reservations (user_id, created_at, id);
"""

DOWNGRADE = f"""
DROP INDEX ix_reservations_user;
CREATE INDEX ix_reservations_user ON reservations (user_id, created_at DESC);
DROP INDEX ix_seats_hall, ix_payments_reservation;
ALTER FUNCTION {CLAIM_SEATS} RESET plan_cache_mode;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
