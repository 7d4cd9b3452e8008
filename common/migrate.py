"""Apply a service's Alembic migrations to a database (`common.schema` checks the revision)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from common.db import async_dsn


def alembic_config(migrations_dir: Path, dsn: str) -> Config:
    """Alembic config for one service's migration history and one database."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", async_dsn(dsn).replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, dsn: str, revision: str = "head") -> None:
    """Bring the database at `dsn` up to `revision`."""
    command.upgrade(alembic_config(migrations_dir, dsn), revision)
