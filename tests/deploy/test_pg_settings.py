"""PostgreSQL's server settings: one set, the same in the local stack, Compose and Kubernetes."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import yaml

from harness.pg import DURABLE_SETTINGS, PgServer, start_server
from tests.deploy.k8s_support import CLUSTERS, ROOT, needs_kubectl, of_kind, render

DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")


@pytest.fixture(scope="module")
def durable() -> Iterator[PgServer]:
    """A durable server started as the local stack and the benchmarks start theirs."""
    server = start_server("settings", durable=True)
    yield server
    server.stop()


def _shown(server: PgServer, names: list[str]) -> dict[str, str]:
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name", (names,)
        )
        return dict(rows.fetchall())


def test_durable_local_server_runs_with_the_adopted_settings(durable: PgServer) -> None:
    assert DURABLE_SETTINGS, "no settings adopted"
    assert _shown(durable, list(DURABLE_SETTINGS)) == DURABLE_SETTINGS


def test_durable_local_server_keeps_durable_commits(durable: PgServer) -> None:
    assert _shown(durable, list(DURABILITY)) == dict.fromkeys(DURABILITY, "on")


def test_no_adopted_setting_trades_durability() -> None:
    assert not set(DURABLE_SETTINGS) & set(DURABILITY)


def _command_settings(command: list[str]) -> dict[str, str]:
    """`-c name=value` pairs of a postgres command line."""
    pairs = [command[i + 1] for i, part in enumerate(command) if part == "-c"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_every_compose_database_carries_the_settings() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.regions.yml").read_text())
    databases = {n: s for n, s in compose["services"].items() if n.endswith("-db")}
    assert set(databases) == {"global-db", "eu-west-db", "us-east-db"}
    for name, service in databases.items():
        assert service["command"][0] == "postgres", name
        assert _command_settings(service["command"]) == DURABLE_SETTINGS, name


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_kubernetes_database_carries_the_settings(cluster: str) -> None:
    (database,) = of_kind(render(cluster), "Cluster")
    parameters: dict[str, str] = database["spec"]["postgresql"]["parameters"]
    assert {k: parameters.get(k) for k in DURABLE_SETTINGS} == DURABLE_SETTINGS
    assert not set(parameters) & set(DURABILITY)
