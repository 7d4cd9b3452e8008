"""Session-wide PostgreSQL servers (one global, two regional) and per-test databases."""

from collections.abc import Iterator
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
    servers: dict[str, PgServer] = {}
    try:
        for name in ("global", *REGIONS):
            servers[name] = start_server(name, durable=False, statement_stats=True)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def global_databases(pg_servers: dict[str, PgServer]) -> DatabaseFactory:
    """Fresh global databases, migrated."""
    return DatabaseFactory(
        pg_servers["global"], ROOT / "global_api" / "migrations", "global_template"
    ).prepare()


@pytest.fixture(scope="session")
def regional_databases(pg_servers: dict[str, PgServer]) -> dict[str, DatabaseFactory]:
    """Fresh regional databases per region, migrated."""
    return {
        region: DatabaseFactory(
            pg_servers[region], ROOT / "regional_api" / "migrations", "regional_template"
        ).prepare()
        for region in REGIONS
    }


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
