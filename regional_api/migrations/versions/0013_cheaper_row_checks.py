"""A hold's and a payment's row checks: the same rules, parsed once per connection, not per statement.

PostgreSQL 15 reads every CHECK constraint of a table that a statement writes from its stored
text (`stringToNode`), plans it and compiles it on every execution of the statement, whatever
columns the statement writes: a one-seat hold paid 11 of them (22 % of its instructions; a
hold+pay 28). A domain's CHECK is parsed and planned once per connection (the type
cache keeps it) and is evaluated only where a value of the domain is written. So:

- the single-column rules of `reservations`, `payments` and `reservation_seats` (status,
  channel, method, and money that is never negative) become domains; the two rules that tie a
  reservation's status to its deadline and its confirmation time stay one CHECK (two before);
- `show_seats` keeps one CHECK (three before), its price and its seat state written in fewer
  nodes: a status among four, no owner exactly when free or blocked, a deadline exactly when
  held (the same four states as `ck_show_seats_state`). Its price cannot be a domain:
  `claim_seats` answers it through RETURN QUERY, which wants the function's declared types; a
  domain status cost the claim more than the CHECK (measured);
- a seat's type on `show_seats` is one of `seat_types` (a foreign key) instead of a CHECK: no
  statement after a show's creation writes it, and an update that leaves a key as it is runs no
  check at all;
- the ticket code's unique index holds codes only: a held seat's empty code no longer adds an
  entry per seat to it on every hold.

Every rule is kept (tests/regional_api/test_row_checks.py inserts each bad row and expects the
refusal). No table is rewritten: a column moves to a domain that has no constraint yet (the same
bytes), then the domain's constraint is added and checked against the rows.

Figures: docs/benchmarks/floor.md, "Seventh round (pgclaim)".

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SEAT_TYPES = ("standard", "premium", "vip", "wheelchair", "companion")

UPGRADE = f"""
CREATE DOMAIN reservation_status AS text;
CREATE DOMAIN sales_channel AS text;
CREATE DOMAIN payment_status AS text;
CREATE DOMAIN payment_method AS text;
CREATE DOMAIN minor_units AS integer;
ALTER TABLE reservations
    DROP CONSTRAINT reservations_status_check,
    DROP CONSTRAINT reservations_channel_check,
    DROP CONSTRAINT reservations_amount_minor_check,
    DROP CONSTRAINT reservations_extensions_check,
    DROP CONSTRAINT reservations_refund_minor_check,
    DROP CONSTRAINT ck_reservations_held_has_deadline,
    DROP CONSTRAINT ck_reservations_confirmed_has_time,
    ALTER COLUMN status TYPE reservation_status,
    ALTER COLUMN channel TYPE sales_channel,
    ALTER COLUMN amount_minor TYPE minor_units,
    ALTER COLUMN extensions TYPE minor_units,
    ALTER COLUMN refund_minor TYPE minor_units;
ALTER TABLE payments
    DROP CONSTRAINT payments_status_check,
    DROP CONSTRAINT payments_method_check,
    DROP CONSTRAINT payments_amount_minor_check,
    ALTER COLUMN status TYPE payment_status,
    ALTER COLUMN method TYPE payment_method,
    ALTER COLUMN amount_minor TYPE minor_units;
ALTER TABLE reservation_seats
    DROP CONSTRAINT reservation_seats_price_minor_check,
    ALTER COLUMN price_minor TYPE minor_units;
ALTER DOMAIN reservation_status ADD CONSTRAINT ck_reservation_status
    CHECK (VALUE = ANY ('{{held,confirmed,canceled,expired}}'::text[]));
ALTER DOMAIN sales_channel ADD CONSTRAINT ck_sales_channel
    CHECK (VALUE = ANY ('{{online,box_office}}'::text[]));
ALTER DOMAIN payment_status ADD CONSTRAINT ck_payment_status
    CHECK (VALUE = ANY ('{{pending,completed,failed,refunding,refunded}}'::text[]));
ALTER DOMAIN payment_method ADD CONSTRAINT ck_payment_method
    CHECK (VALUE = ANY ('{{card,cash,online}}'::text[]));
ALTER DOMAIN minor_units ADD CONSTRAINT ck_minor_units CHECK (VALUE >= 0);
ALTER TABLE reservations ADD CONSTRAINT ck_reservations_held_confirmed CHECK (
    (status <> 'held' OR hold_expires_at IS NOT NULL)
    AND (status <> 'confirmed' OR confirmed_at IS NOT NULL));

CREATE TABLE seat_types (code text PRIMARY KEY);
INSERT INTO seat_types (code) VALUES {", ".join(f"('{code}')" for code in SEAT_TYPES)};
ALTER TABLE show_seats
    DROP CONSTRAINT ck_show_seats_state,
    DROP CONSTRAINT show_seats_seat_type_check,
    DROP CONSTRAINT show_seats_price_minor_check,
    ADD CONSTRAINT fk_show_seats_seat_type FOREIGN KEY (seat_type) REFERENCES seat_types (code),
    ADD CONSTRAINT ck_show_seats_row CHECK (
        price_minor >= 0 AND status = ANY ('{{free,held,sold,blocked}}'::text[])
        AND (reservation_id IS NULL) = (status = ANY ('{{free,blocked}}'::text[]))
        AND (held_until IS NULL) = (status <> 'held'));

ALTER TABLE reservation_seats DROP CONSTRAINT reservation_seats_ticket_code_key;
CREATE UNIQUE INDEX uq_reservation_seats_ticket_code ON reservation_seats (ticket_code)
    WHERE ticket_code IS NOT NULL;
"""  # noqa: S608 - constant fragments only

# A column whose type changed has lost its statistics: gather them again where there are rows.
# Not on an empty database: an analyzed empty table is planned as empty (reltuples 0, not the
# unknown -1 that assumes ten pages), so a connection's first generic plan of a hold, made while
# the tables are small, scanned them whole until autovacuum analyzed them again (PostgreSQL's
# CPU per hold 1.28-2.47 ms against 0.76-1.05 without it: docs/benchmarks/floor.md, "After the
# merge of the seventh round").
STATISTICS = "ANALYZE reservations, payments, reservation_seats"
HAS_ROWS = "SELECT EXISTS (SELECT FROM reservations) OR EXISTS (SELECT FROM payments)"

DOWNGRADE = """
DROP INDEX uq_reservation_seats_ticket_code;
ALTER TABLE reservation_seats ADD CONSTRAINT reservation_seats_ticket_code_key UNIQUE (ticket_code);
ALTER TABLE show_seats
    DROP CONSTRAINT ck_show_seats_row,
    DROP CONSTRAINT fk_show_seats_seat_type,
    ADD CONSTRAINT show_seats_price_minor_check CHECK (price_minor >= 0),
    ADD CONSTRAINT show_seats_seat_type_check
        CHECK (seat_type IN ('standard', 'premium', 'vip', 'wheelchair', 'companion')),
    ADD CONSTRAINT ck_show_seats_state CHECK (
        (status = 'free' AND reservation_id IS NULL AND held_until IS NULL)
        OR (status = 'held' AND reservation_id IS NOT NULL AND held_until IS NOT NULL)
        OR (status = 'sold' AND reservation_id IS NOT NULL AND held_until IS NULL)
        OR (status = 'blocked' AND reservation_id IS NULL AND held_until IS NULL));
DROP TABLE seat_types;
ALTER TABLE reservation_seats
    ALTER COLUMN price_minor TYPE integer,
    ADD CONSTRAINT reservation_seats_price_minor_check CHECK (price_minor >= 0);
ALTER TABLE payments
    ALTER COLUMN status TYPE text,
    ALTER COLUMN method TYPE text,
    ALTER COLUMN amount_minor TYPE integer,
    ADD CONSTRAINT payments_status_check
        CHECK (status IN ('pending', 'completed', 'failed', 'refunding', 'refunded')),
    ADD CONSTRAINT payments_method_check CHECK (method IN ('card', 'cash', 'online')),
    ADD CONSTRAINT payments_amount_minor_check CHECK (amount_minor >= 0);
ALTER TABLE reservations
    DROP CONSTRAINT ck_reservations_held_confirmed,
    ALTER COLUMN status TYPE text,
    ALTER COLUMN channel TYPE text,
    ALTER COLUMN amount_minor TYPE integer,
    ALTER COLUMN extensions TYPE integer,
    ALTER COLUMN refund_minor TYPE integer,
    ADD CONSTRAINT reservations_status_check
        CHECK (status IN ('held', 'confirmed', 'canceled', 'expired')),
    ADD CONSTRAINT reservations_channel_check CHECK (channel IN ('online', 'box_office')),
    ADD CONSTRAINT reservations_amount_minor_check CHECK (amount_minor >= 0),
    ADD CONSTRAINT reservations_extensions_check CHECK (extensions >= 0),
    ADD CONSTRAINT reservations_refund_minor_check CHECK (refund_minor >= 0),
    ADD CONSTRAINT ck_reservations_held_has_deadline
        CHECK (status <> 'held' OR hold_expires_at IS NOT NULL),
    ADD CONSTRAINT ck_reservations_confirmed_has_time
        CHECK (status <> 'confirmed' OR confirmed_at IS NOT NULL);
DROP DOMAIN reservation_status, sales_channel, payment_status, payment_method, minor_units;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    _gather_statistics()


def downgrade() -> None:
    op.execute(DOWNGRADE)
    _gather_statistics()


def _gather_statistics() -> None:
    """ANALYZE the retyped tables if they hold rows (see STATISTICS)."""
    if op.get_bind().execute(sa.text(HAS_ROWS)).scalar():
        op.execute(STATISTICS)
