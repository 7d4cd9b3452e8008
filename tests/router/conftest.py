"""Fixtures: echo upstreams for two regions, a fake directory and a router, all real servers."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.ids import new_id
from harness.live import live_server
from harness.procs import FakeDirectory, Proc, directory_map, metric, router, upstream
from harness.tokens import TestIssuer

CINEMA_EU = new_id("cin", "eu-west")
# Stands in for a load balancer in front of the router: its X-Forwarded-For is believed.
LOAD_BALANCER = "127.0.0.2"
# The router's settings in these tests: small limits to hit, short deadlines.
SETTINGS = {
    "max_body_bytes": 1024,
    "hold_burst": 3,
    "hold_rate_per_second": 0.1,
    "login_burst": 2,
    "login_rate_per_second": 0.1,
    "request_deadline_seconds": 1.5,
    "attempt_timeout_seconds": 1,
    "trusted_proxies": f"{LOAD_BALANCER}/32",
}
# uvicorn protocol with the router's bounds and no fast path: every request on the ASGI path.
ASGI_ONLY = "router.proxy.bounds:BoundedProtocol"


@pytest.fixture(scope="session")
def write_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file every upstream appends one line to per write it receives."""
    return tmp_path_factory.mktemp("router") / "writes.log"


@pytest.fixture(scope="session")
def upstreams(write_log: Path) -> Iterator[dict[str, Proc]]:
    """Two eu-west endpoints (a, b) and one us-east endpoint (c), running."""
    procs = {
        "a": upstream("a", "eu-west", write_log),
        "b": upstream("b", "eu-west", write_log),
        "c": upstream("c", "us-east", write_log),
    }
    try:
        for proc in procs.values():
            proc.start(wait_path=None)
        for proc in procs.values():
            proc.wait("/readyz")
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()


@pytest.fixture(scope="session")
def fake_directory(issuer: TestIssuer, upstreams: dict[str, Proc]) -> FakeDirectory:
    """A directory whose map lists the upstreams and one eu-west cinema."""
    document = directory_map(
        "v1",
        {"eu-west": [upstreams["a"].url, upstreams["b"].url], "us-east": [upstreams["c"].url]},
        {CINEMA_EU: "eu-west"},
    )
    return FakeDirectory(document, issuer.jwks)


@pytest.fixture(scope="session")
def directory_url(fake_directory: FakeDirectory) -> Iterator[str]:
    """The fake directory served on a loopback port."""
    with live_server(fake_directory) as url:
        yield url


@pytest.fixture(scope="session")
def router_url(directory_url: str) -> Iterator[str]:
    """A router in front of the fake directory: small limits to hit, short deadlines."""
    with router(directory_url, **SETTINGS).running() as url:
        yield url


@pytest.fixture(scope="session")
def asgi_router_url(directory_url: str) -> Iterator[str]:
    """The same router taking every request on the ASGI path, to compare the fast path with."""
    proc = router(directory_url, **SETTINGS)
    proc.http = ASGI_ONLY
    with proc.running() as url:
        yield url


def fast_counts(client: httpx.Client) -> dict[str, float]:
    """Requests the router's fast path answered itself, and those it resumed on the ASGI path."""
    return {
        result: metric(client, "router_fast_path_requests_total", result=result)
        for result in ("answered", "resumed")
    }
