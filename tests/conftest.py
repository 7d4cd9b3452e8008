"""Session-wide PostgreSQL servers (one global, two regional) and per-test databases."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from harness.pg import PgServer, start_server
from harness.tokens import TestIssuer
from tests.support.db import DatabaseFactory

ROOT = Path(__file__).resolve().parent.parent
REGIONS = ("eu-west", "us-east")


@pytest.fixture(scope="session")
def pg_servers() -> Iterator[dict[str, PgServer]]:
    """One PostgreSQL server for the global directory and one per region, started once."""
    names = ("global", *REGIONS)
    # initdb, start-up and shutdown wait on the servers: the three run theirs at once.
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = [pool.submit(start_server, n, durable=False, statement_stats=True) for n in names]
        wait(futures)
        started = [future.result() for future in futures if future.exception() is None]
        try:
            servers = {name: future.result() for name, future in zip(names, futures, strict=True)}
            yield servers
        finally:
            list(pool.map(lambda server: server.stop(), started))


@pytest.fixture(scope="session")
def global_databases(pg_servers: dict[str, PgServer]) -> Iterator[DatabaseFactory]:
    """Fresh global databases, migrated."""
    factory = DatabaseFactory(
        pg_servers["global"], ROOT / "global_api" / "migrations", "global_template"
    ).prepare()
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def regional_databases(pg_servers: dict[str, PgServer]) -> Iterator[dict[str, DatabaseFactory]]:
    """Fresh regional databases per region, migrated."""
    factories = {
        region: DatabaseFactory(
            pg_servers[region], ROOT / "regional_api" / "migrations", "regional_template"
        ).prepare()
        for region in REGIONS
    }
    yield factories
    for factory in factories.values():
        factory.close()


@pytest.fixture
def global_dsn(global_databases: DatabaseFactory) -> Iterator[str]:
    """A fresh, migrated global database for this test."""
    with global_databases.fresh("g") as dsn:
        yield dsn


@pytest.fixture
def regional_dsn(regional_databases: dict[str, DatabaseFactory]) -> Iterator[str]:
    """A fresh, migrated eu-west database for this test."""
    with regional_databases["eu-west"].fresh("r") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    """A token issuer whose JWKS the regional apps under test trust."""
    return TestIssuer()
