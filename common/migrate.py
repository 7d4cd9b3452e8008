"""Apply a service's Alembic migrations to a database, and tell whether it has been."""

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import async_dsn
from common.observability import ReadinessCheck


class SchemaBehind(RuntimeError):
    """The database is not yet at the revision this code expects."""


def alembic_config(migrations_dir: Path, dsn: str) -> Config:
    """Alembic config for one service's migration history and one database."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", async_dsn(dsn).replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, dsn: str, revision: str = "head") -> None:
    """Bring the database at `dsn` up to `revision`."""
    command.upgrade(alembic_config(migrations_dir, dsn), revision)


def revisions(migrations_dir: Path) -> tuple[str, frozenset[str]]:
    """The head revision of a migration history and every revision in it."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    assert head is not None, migrations_dir
    return head, frozenset(rev.revision for rev in script.walk_revisions())


def schema_check(engine: Callable[[], AsyncEngine], migrations_dir: Path) -> ReadinessCheck:
    """A readiness check that fails until the database is at this code's head revision.

    A revision this code does not know is newer (the next release migrated first): old pods
    keep serving through the rollout. Once passed the check is not repeated: a schema never
    moves back, and the probe must not wait on the database a second time.
    """
    head, known = revisions(migrations_dir)
    passed = False

    async def check() -> None:
        nonlocal passed
        if passed:
            return
        async with engine().connect() as conn:
            found = await conn.execute(text("SELECT version_num FROM alembic_version"))
            current = found.scalar_one_or_none()
        if current is None or (current != head and current in known):
            raise SchemaBehind(f"schema at {current}, expected {head}")
        passed = True

    return check
