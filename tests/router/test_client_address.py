"""A client's own forwarding headers never name it: the router says who it is, and replaces them.

The router under test trusts one load balancer (127.0.0.2, `ROUTER_TRUSTED_PROXIES`); every
other peer is a client, named by the address it connected from. Each test connects from a
loopback address of its own, so the per-address buckets it fills are its own.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from common.ids import new_id
from harness.procs import client_from, wait_all_healthy
from tests.router.conftest import LOAD_BALANCER, fast_counts


def _spoofed(n: int) -> dict[str, str]:
    """Forwarding headers a client makes up, different on every request."""
    return {
        "X-Forwarded-For": f"198.51.100.{n}, 10.0.0.{n}",
        "Forwarded": f"for=198.51.100.{n};proto=https",
        "X-Real-IP": f"198.51.100.{n}",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
    }


@pytest.fixture
def healthy(router_url: str) -> str:
    """The router's URL once every endpoint is in rotation."""
    wait_all_healthy(router_url)
    return router_url


@pytest.fixture
def direct(healthy: str) -> Iterator[httpx.Client]:
    """A client that reaches the router straight from 127.0.0.3 (not a trusted proxy)."""
    with client_from("127.0.0.3", healthy) as http:
        yield http


def _seen(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    headers: dict[str, Any] = response.json()["headers"]
    return headers


def test_made_up_forwarding_headers_are_replaced_on_both_paths(direct: httpx.Client) -> None:
    fast = direct.get("/regions/eu-west/x", headers=_spoofed(1))
    fast_post = direct.post("/regions/eu-west/x", json={}, headers=_spoofed(2))
    asgi = direct.get("/regions/eu-west/%78", headers=_spoofed(3))  # percent-encoded: ASGI path
    for response in (fast, fast_post, asgi):
        seen = _seen(response)
        assert seen["x-forwarded-for"] == "127.0.0.3"
        assert seen["x-forwarded-proto"] == "http"
        for name in ("forwarded", "x-real-ip", "x-forwarded-host"):
            assert name not in seen, name


def test_spoofed_headers_do_not_reset_the_hold_rate_limit(direct: httpx.Client) -> None:
    show = new_id("show", "eu-west")
    before = fast_counts(direct)
    statuses = [
        direct.post(f"/shows/{show}/holds", json={}, headers=_spoofed(n)).status_code
        for n in range(8)
    ]
    # hold_burst=3 per address: a new made-up address on every request changes nothing.
    assert statuses == [200, 200, 200] + [429] * 5
    after = fast_counts(direct)
    # All eight began on the fast path, which refused the five itself (the others may have
    # found no idle connection to their endpoint and been sent by ProxyApp).
    began = {result: after[result] - before[result] for result in after}
    assert began["answered"] + began["resumed"] == 8
    assert began["answered"] >= 5
    with client_from("127.0.0.4", direct.base_url) as neighbour:
        assert neighbour.post(f"/shows/{show}/holds", json={}).status_code == 200


def test_a_percent_encoded_hold_path_is_rate_limited_too(healthy: str) -> None:
    show = new_id("show", "eu-west")
    with client_from("127.0.0.9", healthy) as client:
        statuses = [client.post(f"/shows/{show}/h%6Flds", json={}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # hold_burst=3, as for /holds


def test_spoofed_headers_do_not_reset_the_login_rate_limit(direct: httpx.Client) -> None:
    with client_from("127.0.0.5", direct.base_url) as client:
        statuses = [
            client.post("/auth/login", json={}, headers=_spoofed(n)).status_code for n in range(4)
        ]
    assert statuses == [200, 200, 429, 429]  # login_burst=2


def test_behind_the_load_balancer_the_rightmost_untrusted_hop_is_the_client(
    healthy: str,
) -> None:
    show = new_id("show", "eu-west")
    with client_from(LOAD_BALANCER, healthy) as balancer:
        # The load balancer appends the address it saw; the rest came from the client.
        chain = [{"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.5"} for n in range(6)]
        seen = _seen(balancer.get("/regions/eu-west/x", headers=chain[0]))
        assert seen["x-forwarded-for"] == "203.0.113.5"
        statuses = [
            balancer.post(f"/shows/{show}/holds", json={}, headers=headers).status_code
            for headers in chain
        ]
        assert statuses == [200, 200, 200, 429, 429, 429]
        # Another client behind the same balancer has its own bucket.
        other = {"X-Forwarded-For": "203.0.113.6"}
        assert balancer.post(f"/shows/{show}/holds", json={}, headers=other).status_code == 200
        # A balancer that names nobody: the balancer itself is the client.
        assert _seen(balancer.get("/regions/eu-west/x"))["x-forwarded-for"] == LOAD_BALANCER
