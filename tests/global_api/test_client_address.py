"""Made-up forwarding headers cannot get past the login throttle, through the router or not.

Real processes, started as every deployment starts them: global_api believes X-Forwarded-For
only from the router's hop (`--forwarded-allow-ips 127.0.0.1`: the router connects from
there), the router derives the client itself and trusts one load balancer (127.0.0.2). Clients
connect from loopback addresses of their own, so each one is a distinct address.
"""

from collections.abc import Iterator

import httpx
import pytest

from harness.procs import Proc, client_from, router
from tests.global_api.support import PASSWORD, GlobalClient
from tests.support.db import DatabaseFactory

ROUTER_HOP = "127.0.0.1"
LOAD_BALANCER = "127.0.0.2"
THRESHOLD = 3


def _spoofed(n: int) -> dict[str, str]:
    return {
        "X-Forwarded-For": f"198.51.100.{n}",
        "Forwarded": f"for=198.51.100.{n}",
        "X-Real-IP": f"198.51.100.{n}",
    }


@pytest.fixture(scope="module")
def global_url(global_databases: DatabaseFactory) -> Iterator[str]:
    """global_api as a process, on a database of its own, believing the router's hop only."""
    with global_databases.fresh("ca") as dsn:
        yield from _global_process(dsn)


def _global_process(dsn: str) -> Iterator[str]:
    env = {
        "GLOBAL_DATABASE_URL": dsn,
        "GLOBAL_ARGON2_TIME_COST": "1",
        "GLOBAL_ARGON2_MEMORY_COST": "8",
        "GLOBAL_ARGON2_PARALLELISM": "1",
        "GLOBAL_LOGIN_FAILURE_THRESHOLD": str(THRESHOLD),
        "GLOBAL_LOGIN_FAILURE_WINDOW_SECONDS": "600",
        "GLOBAL_LOG_LEVEL": "WARNING",
    }
    with Proc("global_api.main:create_app", env, forwarded_allow_ips=ROUTER_HOP).running() as url:
        yield url


@pytest.fixture(scope="module")
def router_url(global_url: str) -> Iterator[str]:
    """The router in front of it, its own login limit off so global_api's throttle is tested."""
    with router(
        global_url, rate_limit_enabled="false", trusted_proxies=f"{LOAD_BALANCER}/32"
    ).running() as url:
        yield url


def _login(client: httpx.Client, email: str, password: str, n: int) -> int:
    body = {"email": email, "password": password}
    return client.post("/auth/login", json=body, headers=_spoofed(n)).status_code


def _accounts(base_url: str, count: int) -> list[str]:
    with httpx.Client(base_url=base_url, timeout=10.0) as http:
        return [GlobalClient(http).register()["email"] for _ in range(count)]


@pytest.mark.parametrize("via", ["direct", "router"])
def test_spoofed_headers_do_not_escape_the_address_throttle(
    global_url: str, router_url: str, via: str
) -> None:
    base = global_url if via == "direct" else router_url
    emails = _accounts(global_url, THRESHOLD + 1)
    me, neighbour = ("127.0.0.7", "127.0.0.8") if via == "direct" else ("127.0.0.9", "127.0.0.10")
    with client_from(me, base) as client:
        failed = [_login(client, email, "wrong-password", n) for n, email in enumerate(emails)]
        # The address is throttled after THRESHOLD failures, whatever each request claimed.
        assert failed == [401] * THRESHOLD + [429]
        assert _login(client, emails[-1], PASSWORD, 99) == 429
    with client_from(neighbour, base) as other:
        assert _login(other, emails[-1], PASSWORD, 100) == 200


@pytest.mark.parametrize("via", ["direct", "router"])
def test_spoofed_headers_do_not_escape_the_account_throttle(
    global_url: str, router_url: str, via: str
) -> None:
    base = global_url if via == "direct" else router_url
    (email,) = _accounts(global_url, 1)
    # Failures from many real addresses (behind the trusted balancer, or trusted-hop peers
    # naming them), each with made-up headers: the account's count still adds up.
    peer = LOAD_BALANCER if via == "router" else ROUTER_HOP
    with client_from(peer, base) as client:
        for n in range(THRESHOLD):
            forwarded = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.{n + 1}"}
            wrong = {"email": email, "password": "wrong-password"}
            assert client.post("/auth/login", json=wrong, headers=forwarded).status_code == 401
    with client_from("127.0.0.11", base) as fresh:
        assert _login(fresh, email, PASSWORD, 7) == 429


def test_the_router_hop_names_the_client(global_url: str) -> None:
    emails = _accounts(global_url, THRESHOLD + 1)
    with client_from(ROUTER_HOP, global_url) as hop:
        for email in emails[:THRESHOLD]:
            wrong = {"email": email, "password": "wrong-password"}
            named = {"X-Forwarded-For": "203.0.113.50"}
            assert hop.post("/auth/login", json=wrong, headers=named).status_code == 401
        right = {"email": emails[-1], "password": PASSWORD}
        blocked = hop.post("/auth/login", json=right, headers={"X-Forwarded-For": "203.0.113.50"})
        assert blocked.status_code == 429
        other = hop.post("/auth/login", json=right, headers={"X-Forwarded-For": "203.0.113.51"})
        assert other.status_code == 200
