"""Seat updates that touch no index, and refunds per show from a small partial index.

Every hold, extension, release, sale and expiry rewrites a `show_seats` row. While
`reservation_id` was indexed no such update could be HOT, so each one added an entry to every
index of the table and moved the row to whichever page had room: the primary key grew past the
table and a show's seats spread over dozens of pages. The seats of a reservation are found
through `reservation_seats` (its primary key), so the index goes, and a fillfactor of 85 leaves
room on each page for a seat's next versions: updates stay on the page and add no index entry
(docs/benchmarks/growth.md). The fillfactor applies to pages written from now on; a table and
key that already grew are compacted once by the operator (docs/benchmarks/growth.md).

The reports read a show's refunds from its canceled reservations (only those are refunded;
`refund_minor` is written with the refund row) in a small partial index that carries the
amount, instead of reading every reservation of the show and probing `refunds` for each. A
reservation's status is already in a partial index's predicate, so its cancellation was never a
HOT update; only the refund's write of `refund_minor` now updates this index.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
DROP INDEX ix_show_seats_reservation;
ALTER TABLE show_seats SET (fillfactor = 85);
CREATE INDEX ix_reservations_show_canceled ON reservations (show_id) INCLUDE (refund_minor)
    WHERE status = 'canceled';
"""

DOWNGRADE = """
DROP INDEX ix_reservations_show_canceled;
ALTER TABLE show_seats RESET (fillfactor);
CREATE INDEX ix_show_seats_reservation ON show_seats (reservation_id)
    WHERE reservation_id IS NOT NULL;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
