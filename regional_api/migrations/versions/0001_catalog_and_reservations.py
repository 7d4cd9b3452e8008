"""Catalog (cinemas, halls, seats, movies, shows) and reservations (holds, payments, tickets).

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEAT_TYPES = "('standard', 'premium', 'vip', 'wheelchair', 'companion')"

UPGRADE = f"""
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE cinemas (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    city        text NOT NULL,
    address     text NOT NULL DEFAULT '',
    timezone    text NOT NULL,
    synced_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_cinemas_city ON cinemas (lower(city));

CREATE TABLE halls (
    id          text PRIMARY KEY,
    cinema_id   text NOT NULL REFERENCES cinemas (id),
    name        text NOT NULL,
    layout      jsonb NOT NULL,
    seat_count  integer NOT NULL CHECK (seat_count > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_halls_cinema_id_name UNIQUE (cinema_id, name)
);

CREATE TABLE seats (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hall_id     text NOT NULL REFERENCES halls (id) ON DELETE CASCADE,
    row_label   text NOT NULL,
    number      integer NOT NULL CHECK (number > 0),
    label       text NOT NULL,
    grid_row    integer NOT NULL CHECK (grid_row >= 0),
    grid_col    integer NOT NULL CHECK (grid_col >= 0),
    seat_type   text NOT NULL CHECK (seat_type IN {SEAT_TYPES}),
    blocked     boolean NOT NULL DEFAULT false,
    CONSTRAINT uq_seats_hall_id_label UNIQUE (hall_id, label),
    CONSTRAINT uq_seats_hall_id_grid UNIQUE (hall_id, grid_row, grid_col)
);

CREATE TABLE movies (
    id               text PRIMARY KEY,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    description      text NOT NULL DEFAULT '',
    genres           text[] NOT NULL DEFAULT '{{}}',
    duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 1 AND 1000),
    age_rating       text NOT NULL DEFAULT '',
    poster_url       text,
    external_id      text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_movies_title ON movies (lower(title));

CREATE TABLE shows (
    id          text PRIMARY KEY,
    movie_id    text NOT NULL REFERENCES movies (id),
    hall_id     text NOT NULL REFERENCES halls (id),
    cinema_id   text NOT NULL REFERENCES cinemas (id),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    status      text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'canceled')),
    currency    char(3) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    canceled_at timestamptz,
    CONSTRAINT ck_shows_ends_after_start CHECK (ends_at > starts_at),
    -- Two scheduled shows in one hall never overlap: the database refuses the second.
    CONSTRAINT ex_shows_hall_overlap EXCLUDE USING gist (
        hall_id WITH =, tstzrange(starts_at, ends_at) WITH &&
    ) WHERE (status = 'scheduled')
);
CREATE INDEX ix_shows_cinema_starts ON shows (cinema_id, starts_at);
CREATE INDEX ix_shows_movie_starts ON shows (movie_id, starts_at);
CREATE INDEX ix_shows_starts ON shows (starts_at);

CREATE TABLE show_prices (
    show_id      text NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    seat_type    text NOT NULL CHECK (seat_type IN {SEAT_TYPES}),
    amount_minor integer NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (show_id, seat_type)
);

CREATE TABLE reservations (
    id              text PRIMARY KEY,
    show_id         text NOT NULL REFERENCES shows (id),
    cinema_id       text NOT NULL REFERENCES cinemas (id),
    user_id         text,
    customer_email  text,
    channel         text NOT NULL CHECK (channel IN ('online', 'box_office')),
    status          text NOT NULL CHECK (status IN ('held', 'confirmed', 'canceled', 'expired')),
    hold_expires_at timestamptz,
    extensions      integer NOT NULL DEFAULT 0 CHECK (extensions >= 0),
    amount_minor    integer NOT NULL CHECK (amount_minor >= 0),
    currency        char(3) NOT NULL,
    refund_minor    integer CHECK (refund_minor >= 0),
    created_at      timestamptz NOT NULL,
    confirmed_at    timestamptz,
    canceled_at     timestamptz,
    CONSTRAINT ck_reservations_held_has_deadline CHECK (status <> 'held' OR hold_expires_at IS NOT NULL),
    CONSTRAINT ck_reservations_confirmed_has_time CHECK (status <> 'confirmed' OR confirmed_at IS NOT NULL)
);
CREATE INDEX ix_reservations_user ON reservations (user_id, created_at DESC);
CREATE INDEX ix_reservations_show ON reservations (show_id);
CREATE INDEX ix_reservations_held_deadline ON reservations (hold_expires_at) WHERE status = 'held';

-- One row per seat of a show: the single place that says who holds or owns the seat.
-- A hold or sale is an atomic conditional UPDATE of these rows; a seat can name one
-- reservation at most, and a lapsed hold counts as free by the availability rule itself.
CREATE TABLE show_seats (
    show_id        text NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    seat_id        bigint NOT NULL REFERENCES seats (id),
    seat_type      text NOT NULL CHECK (seat_type IN {SEAT_TYPES}),
    price_minor    integer NOT NULL CHECK (price_minor >= 0),
    status         text NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'held', 'sold', 'blocked')),
    reservation_id text REFERENCES reservations (id),
    held_until     timestamptz,
    PRIMARY KEY (show_id, seat_id),
    CONSTRAINT ck_show_seats_state CHECK (
        (status = 'free' AND reservation_id IS NULL AND held_until IS NULL)
        OR (status = 'held' AND reservation_id IS NOT NULL AND held_until IS NOT NULL)
        OR (status = 'sold' AND reservation_id IS NOT NULL AND held_until IS NULL)
        OR (status = 'blocked' AND reservation_id IS NULL AND held_until IS NULL)
    )
);
CREATE INDEX ix_show_seats_reservation ON show_seats (reservation_id) WHERE reservation_id IS NOT NULL;

CREATE TABLE reservation_seats (
    reservation_id text NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    show_id        text NOT NULL,
    seat_id        bigint NOT NULL,
    seat_type      text NOT NULL,
    price_minor    integer NOT NULL CHECK (price_minor >= 0),
    ticket_code    text UNIQUE,
    checked_in_at  timestamptz,
    PRIMARY KEY (reservation_id, seat_id),
    FOREIGN KEY (show_id, seat_id) REFERENCES show_seats (show_id, seat_id) ON DELETE CASCADE
);

CREATE TABLE payments (
    id              text PRIMARY KEY,
    reservation_id  text NOT NULL REFERENCES reservations (id),
    method          text NOT NULL CHECK (method IN ('card', 'cash', 'online')),
    status          text NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    amount_minor    integer NOT NULL CHECK (amount_minor >= 0),
    currency        char(3) NOT NULL,
    provider_ref    text,
    failure_reason  text,
    created_at      timestamptz NOT NULL,
    completed_at    timestamptz
);
-- At most one completed payment per reservation: a double charge is impossible.
CREATE UNIQUE INDEX uq_payments_completed_per_reservation
    ON payments (reservation_id) WHERE status = 'completed';

CREATE TABLE refunds (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reservation_id  text NOT NULL UNIQUE REFERENCES reservations (id),
    payment_id      text REFERENCES payments (id),
    amount_minor    integer NOT NULL CHECK (amount_minor >= 0),
    currency        char(3) NOT NULL,
    reason          text NOT NULL,
    created_at      timestamptz NOT NULL
);

-- A retried write with the same key has one effect: the key row is inserted in the same
-- transaction as the write, so a concurrent duplicate waits on it and then replays.
CREATE TABLE idempotency_keys (
    scope         text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status_code   integer,
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
"""

DOWNGRADE = """
DROP TABLE idempotency_keys, refunds, payments, reservation_seats, show_seats, reservations,
    show_prices, shows, movies, seats, halls, cinemas;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
