"""The ORM models agree with the schema the migrations build."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from common.db import async_dsn
from common.migrate import alembic_config
from global_api.db import Base
from global_api.models import import_all_models

# Indexes and constraints live in the migration only; tables, columns, types and nullability
# must match the models exactly.
CHECKED = {"add_table", "remove_table", "add_column", "remove_column"}
CHECKED_MODIFY = {"modify_type", "modify_nullable"}


def _relevant(diff: Any) -> bool:
    if isinstance(diff, list):  # column modifications come grouped
        return any(item[0] in CHECKED_MODIFY for item in diff)
    return bool(diff[0] in CHECKED)


def test_models_match_migrations(global_dsn: str) -> None:
    import_all_models()
    engine = create_engine(async_dsn(global_dsn))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = [d for d in compare_metadata(context, Base.metadata) if _relevant(d)]
    finally:
        engine.dispose()
    assert diffs == []


def test_migrations_downgrade_and_upgrade_again(global_dsn: str) -> None:
    migrations = Path(__file__).resolve().parents[2] / "global_api" / "migrations"
    config = alembic_config(migrations, global_dsn)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
