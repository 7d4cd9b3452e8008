"""Migrated template databases, and a fresh database per test cloned from them."""

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common.migrate import upgrade
from harness.pg import PgServer, create_database, drop_database

_counter = itertools.count()


@dataclass
class DatabaseFactory:
    """Clones a migrated template database on one server, once per test."""

    server: PgServer
    migrations: Path
    template: str

    def prepare(self) -> "DatabaseFactory":
        """Create the template and apply the migrations to it (the schema tests get)."""
        dsn = create_database(self.server.admin_dsn, self.template, drop_existing=True)
        upgrade(self.migrations, dsn)
        return self

    @contextmanager
    def fresh(self, prefix: str = "t") -> Iterator[str]:
        """A fresh database with the migrated schema for the block (its DSN); dropped after."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        dsn = create_database(self.server.admin_dsn, name, template=self.template)
        try:
            yield dsn
        finally:
            drop_database(self.server.admin_dsn, name)
