"""The router's memory: what it imports, what an idle keep-alive connection keeps."""

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from harness.live import live_server
from harness.procs import FakeDirectory, directory_map, metric, router, wait_all_healthy
from harness.tokens import TestIssuer
from tests.router import held_clients

IDLE_CONNECTIONS = 2000


def test_the_router_imports_no_database_driver() -> None:
    loads = (
        "import sys; from router.main import create_app; import router.proxy.protocol;"
        " create_app(jwks={'keys': []});"
        " print(sorted(m for m in ('sqlalchemy', 'psycopg', 'psycopg_pool') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", loads], capture_output=True, check=True)
    assert done.stdout.decode().strip() == "[]"  # they cost the router ~22 MB


@pytest.fixture
def lasting(issuer: TestIssuer) -> Iterator[str]:
    """A router whose idle connections stay open for the whole test."""
    document = directory_map("v1", {}, {})
    with live_server(FakeDirectory(document, issuer.jwks)) as directory_url:
        settings = {"client_keepalive_seconds": 600, "max_connections_per_client": 20_000}
        with router(directory_url, **settings).running() as url:
            wait_all_healthy(url)
            yield url


def _rss_kib(client: httpx.Client) -> float:
    return metric(client, "process_resident_memory_bytes") / 1024


def test_an_idle_keep_alive_connection_keeps_no_request(lasting: str) -> None:
    client = httpx.Client(base_url=lasting, timeout=10)
    before = _rss_kib(client)
    connections = lambda: metric(client, "router_client_connections") - 1  # noqa: E731  # ours
    with held_clients.held(lasting, "-", IDLE_CONNECTIONS, connections):
        per_connection = (_rss_kib(client) - before) / IDLE_CONNECTIONS
    print(f"\n{IDLE_CONNECTIONS} idle connections: {per_connection:.2f} KiB each")
    # 12.9 KiB when each kept its last request and cycle (docs/benchmarks/onsale-line.md).
    assert per_connection < 7
