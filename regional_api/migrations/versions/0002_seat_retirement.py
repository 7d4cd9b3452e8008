"""Seats retired by a layout replacement stay for the history of past shows.

A hall's layout can be replaced once no upcoming show uses it; seats that past shows still
reference are kept (marked retired) instead of deleted, so labels and grid positions are unique
among the hall's current seats only.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE seats ADD COLUMN retired_at timestamptz;
ALTER TABLE seats DROP CONSTRAINT uq_seats_hall_id_label, DROP CONSTRAINT uq_seats_hall_id_grid;
CREATE UNIQUE INDEX uq_seats_hall_id_label ON seats (hall_id, label) WHERE retired_at IS NULL;
CREATE UNIQUE INDEX uq_seats_hall_id_grid
    ON seats (hall_id, grid_row, grid_col) WHERE retired_at IS NULL;
-- Deleting or retiring seats asks whether any show still references them.
CREATE INDEX ix_show_seats_seat ON show_seats (seat_id);
CREATE INDEX ix_halls_cinema ON halls (cinema_id);
CREATE INDEX ix_shows_hall_starts ON shows (hall_id, starts_at);
"""

DOWNGRADE = """
DROP INDEX ix_shows_hall_starts, ix_halls_cinema, ix_show_seats_seat,
    uq_seats_hall_id_grid, uq_seats_hall_id_label;
DELETE FROM seats WHERE retired_at IS NOT NULL;
ALTER TABLE seats
    ADD CONSTRAINT uq_seats_hall_id_label UNIQUE (hall_id, label),
    ADD CONSTRAINT uq_seats_hall_id_grid UNIQUE (hall_id, grid_row, grid_col),
    DROP COLUMN retired_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
