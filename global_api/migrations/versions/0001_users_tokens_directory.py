"""Users, staff assignments, signing keys, refresh tokens, login throttling, cinema directory.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE users (
    id              text PRIMARY KEY,
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    display_name    text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    password_hash   text NOT NULL,
    role            text NOT NULL DEFAULT 'customer'
                    CONSTRAINT ck_users_role CHECK (role IN ('admin', 'staff', 'customer')),
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- One account per address in any letter case: the database decides, never a prior lookup.
CREATE UNIQUE INDEX uq_users_email_lower ON users (lower(email));
CREATE INDEX ix_users_role ON users (role);
CREATE INDEX ix_users_created_at ON users (created_at);

CREATE TABLE regions (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9]*(-[a-z0-9]+)*$'),
    name        text NOT NULL,
    currency    char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    endpoints   text[] NOT NULL CHECK (cardinality(endpoints) >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cinemas (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    city        text NOT NULL,
    address     text NOT NULL DEFAULT '',
    timezone    text NOT NULL,
    region      text NOT NULL CONSTRAINT fk_cinemas_region_regions REFERENCES regions (code),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_cinemas_region ON cinemas (region);
CREATE INDEX ix_cinemas_city ON cinemas (lower(city));

CREATE TABLE staff_cinemas (
    user_id     text NOT NULL
                CONSTRAINT fk_staff_cinemas_user_id_users REFERENCES users (id) ON DELETE CASCADE,
    cinema_id   text NOT NULL
                CONSTRAINT fk_staff_cinemas_cinema_id_cinemas REFERENCES cinemas (id),
    CONSTRAINT pk_staff_cinemas PRIMARY KEY (user_id, cinema_id)
);
CREATE INDEX ix_staff_cinemas_cinema_id ON staff_cinemas (cinema_id);

-- The directory version: an epoch (new per database) plus a counter bumped by every write.
CREATE TABLE directory_version (
    id          boolean PRIMARY KEY DEFAULT true CONSTRAINT ck_directory_version_single CHECK (id),
    epoch       text NOT NULL DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 8),
    counter     bigint NOT NULL DEFAULT 1
);
INSERT INTO directory_version DEFAULT VALUES;

CREATE FUNCTION bump_directory_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE directory_version SET counter = counter + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER trg_regions_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON regions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER trg_cinemas_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cinemas
    FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version();

CREATE TABLE signing_keys (
    kid             text PRIMARY KEY,
    private_key_pem text NOT NULL,
    public_jwk      jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz
);
-- At most one active key: concurrent startups or rotations cannot both install one.
CREATE UNIQUE INDEX uq_signing_keys_active ON signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY,
    family_id   text NOT NULL,
    user_id     text NOT NULL
                CONSTRAINT fk_refresh_tokens_user_id_users REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX ix_refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX ix_refresh_tokens_user_id ON refresh_tokens (user_id);

-- Recent failed logins per key ('account:<email>' or 'address:<ip>'), newest last.
CREATE TABLE login_failures (
    key         text PRIMARY KEY,
    failures    timestamptz[] NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_login_failures_updated_at ON login_failures (updated_at);
"""

DOWNGRADE = """
DROP TABLE login_failures;
DROP TABLE refresh_tokens;
DROP TABLE signing_keys;
DROP TABLE staff_cinemas;
DROP TABLE cinemas;
DROP TABLE regions;
DROP FUNCTION bump_directory_version();
DROP TABLE directory_version;
DROP TABLE users;
"""


def upgrade() -> None:
    """Create the global schema."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop the global schema."""
    op.execute(DOWNGRADE)
