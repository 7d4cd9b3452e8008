"""Migrated template databases, and a fresh database per test cloned from them."""

import itertools
import os
from dataclasses import dataclass, field
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
    _made: list[str] = field(default_factory=list)

    def prepare(self) -> "DatabaseFactory":
        """Create the template and apply the migrations to it (the schema tests get)."""
        dsn = create_database(self.server.admin_dsn, self.template, drop_existing=True)
        upgrade(self.migrations, dsn)
        return self

    def new(self, prefix: str = "t") -> str:
        """A fresh database with the migrated schema; returns its DSN."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        self._made.append(name)
        return create_database(self.server.admin_dsn, name, template=self.template)

    def drop(self, dsn: str) -> None:
        """Drop a database made by `new`."""
        drop_database(self.server.admin_dsn, dsn.rsplit("/", 1)[1])
