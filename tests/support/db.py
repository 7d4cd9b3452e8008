"""Migrated template databases, and a fresh database per test cloned from them."""

import itertools
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.migrate import upgrade
from harness.pg import PgServer, create_database, drop_database, dsn_for

_counter = itertools.count()


@dataclass
class DatabaseFactory:
    """Clones a migrated template database on one server, once per test.

    The next test's clone is made in the background while a test runs (one per prefix): a clone
    costs 50-250 ms of waiting on the server, which the suite paid before almost every test.
    """

    server: PgServer
    migrations: Path
    template: str
    _spares: dict[str, Future[str]] = field(default_factory=dict, init=False, repr=False)
    _cloner: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1), init=False, repr=False
    )

    def prepare(self) -> "DatabaseFactory":
        """Create the template and apply the migrations to it (the schema tests get)."""
        dsn = create_database(self.server.admin_dsn, self.template, drop_existing=True)
        upgrade(self.migrations, dsn)
        return self

    @contextmanager
    def fresh(self, prefix: str = "t") -> Iterator[str]:
        """A fresh database with the migrated schema for the block (its DSN); dropped after."""
        spare = self._spares.pop(prefix, None)
        name = spare.result() if spare is not None else self._clone(prefix)
        self._spares[prefix] = self._cloner.submit(self._clone, prefix)
        try:
            yield dsn_for(self.server.admin_dsn, name)
        finally:
            drop_database(self.server.admin_dsn, name)

    def close(self) -> None:
        """Drop the clones made ahead and stop making them."""
        for spare in self._spares.values():
            drop_database(self.server.admin_dsn, spare.result())
        self._spares.clear()
        self._cloner.shutdown()

    def _clone(self, prefix: str) -> str:
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        create_database(self.server.admin_dsn, name, template=self.template)
        return name
