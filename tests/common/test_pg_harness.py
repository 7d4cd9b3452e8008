"""The PostgreSQL harness starts real servers and the migrations apply."""

import psycopg

from harness.pg import PgServer
from tests.support.db import DatabaseFactory


def test_servers_answer_and_are_distinct(pg_servers: dict[str, PgServer]) -> None:
    ports = set()
    for server in pg_servers.values():
        with psycopg.connect(server.admin_dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            ports.add(conn.info.port)
    assert len(ports) == len(pg_servers)


def test_each_test_database_is_fresh(regional_databases: dict[str, DatabaseFactory]) -> None:
    factory = regional_databases["us-east"]
    with factory.fresh() as first, factory.fresh() as second:
        with psycopg.connect(first) as conn:
            conn.execute(
                "INSERT INTO cinemas (id, name, city, timezone) "
                "VALUES ('cin-us-east-000000000000', 'A', 'Boston', 'America/New_York')"
            )
        with psycopg.connect(second) as conn:
            assert conn.execute("SELECT count(*) FROM cinemas").fetchone() == (0,)
