"""Alembic environment for a regional database."""

from alembic import context
from sqlalchemy import create_engine, pool

from regional_api.db import Base
from regional_api.models import import_all_models

import_all_models()
target_metadata = Base.metadata


def run_migrations() -> None:
    """Run migrations online against `sqlalchemy.url`."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
