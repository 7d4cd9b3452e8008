"""The router's pure rules: path resolution, health transitions, token buckets, fan-out merge."""

import json
from ipaddress import ip_network

import pytest

from common.ids import new_id
from router.config import RouterSettings
from router.fanout.service import RegionAnswer, merge, region_query
from router.proxy.accesslog import AccessLog
from router.proxy.clients import TrustedProxies
from router.proxy.headers import read_request_headers, response_headers
from router.proxy.resolve import Route, RouteNotFound, resolve
from router.ratelimit.buckets import TokenBuckets
from router.upstreams.pool import Endpoint, Health, RegionPool

REGIONS = {"eu-west", "us-east"}


def _resolve(path: str, cinemas: dict[str, str] | None = None) -> Route:
    return resolve(path, path, regions=REGIONS, cinema_regions=cinemas or {})


def test_resolution_rules() -> None:
    show = new_id("show", "us-east")
    cinema = new_id("cin", "eu-west")
    assert _resolve("/auth/login") == Route(None, "/auth/login")
    assert _resolve("/regions/eu-west/shows") == Route("eu-west", "/shows")
    assert _resolve(f"/shows/{show}/seats") == Route("us-east", f"/shows/{show}/seats")
    assert _resolve(f"/cinemas/{cinema}", {cinema: "eu-west"}) == Route(
        "eu-west", f"/cinemas/{cinema}"
    )
    with pytest.raises(RouteNotFound) as miss:
        _resolve(f"/cinemas/{cinema}")
    assert miss.value.cinema_miss
    for bad in ("/shows/x", f"/halls/{show}", "/regions/xx-yy/a", "/", "/regions/eu-west/"):
        with pytest.raises(RouteNotFound) as caught:
            _resolve(bad)
        assert not caught.value.cinema_miss


def _endpoint(url: str = "http://127.0.0.1:1") -> Endpoint:
    return Endpoint(region="eu-west", url=url, client=None)  # type: ignore[arg-type]


def test_health_rise_fall_and_passive_rules() -> None:
    health = Health(RouterSettings(probe_rise=2, probe_fall=2, passive_fall=3))
    a, b = _endpoint("http://a"), _endpoint("http://b")
    pool = RegionPool("eu-west", [a, b])
    health.probe_failed(a)  # the first probe decides at once
    assert not a.healthy
    health.probe_ok(a)
    assert not a.healthy  # needs `rise` successes in a row
    health.probe_ok(a)
    assert a.healthy
    health.probe_failed(a)
    assert a.healthy  # one failure is not `fall`
    health.probe_failed(a)
    assert not a.healthy
    health.probe_ok(a)
    health.probe_ok(a)
    for _ in range(3):
        health.traffic_5xx(a, pool)
    assert not a.healthy
    for _ in range(5):
        health.traffic_5xx(b, pool)
    assert b.healthy  # never the last healthy endpoint on 5xx
    health.traffic_failed(b, pool, reason="connection", immediate=True)
    assert not b.healthy
    assert pool.pick() is None


def test_timeouts_never_eject_the_last_healthy_endpoint() -> None:
    health = Health(RouterSettings(probe_rise=2, probe_fall=2, passive_fall=2))
    a, b = _endpoint("http://a"), _endpoint("http://b")
    pool = RegionPool("eu-west", [a, b])
    for endpoint in (a, b):
        health.probe_ok(endpoint)
    for _ in range(3):  # a rush: both answer late
        health.probe_failed(a, pool, slow=True)
        health.probe_failed(b, pool, slow=True)
        health.traffic_failed(b, pool, reason="timeout", immediate=False)
    assert a.healthy != b.healthy  # one ejected, the last one kept serving
    survivor = a if a.healthy else b
    health.probe_failed(survivor, pool)  # a refused or 503 probe is not a slow one
    health.probe_failed(survivor, pool)
    assert not survivor.healthy
    assert pool.pick() is None


def test_pick_prefers_the_least_loaded_and_skips_excluded() -> None:
    a, b = _endpoint("http://a"), _endpoint("http://b")
    pool = RegionPool("eu-west", [a, b])
    a.in_flight = 3
    assert pool.pick() is b
    assert pool.pick(exclude=[b]) is a
    assert {pool.pick() for _ in range(4)} == {b}
    a.in_flight = 0
    assert {pool.pick() for _ in range(4)} == {a, b}


def test_token_bucket_refills() -> None:
    buckets = TokenBuckets("t", rate=2.0, burst=2, max_clients=2)
    assert buckets.take("x", now=0.0) == 0
    assert buckets.take("x", now=0.0) == 0
    assert buckets.take("x", now=0.0) == pytest.approx(0.5)
    assert buckets.take("x", now=0.5) == 0
    assert buckets.take("y", now=0.5) == 0
    assert buckets.take("z", now=10.0) == 0  # pruning keeps the table bounded


def test_headers_both_ways() -> None:
    inbound = read_request_headers(
        [(b"connection", b"close, x-hop"), (b"x-hop", b"1"), (b"idempotency-key", b"k"),
         (b"content-length", b"12"), (b"expect", b"100-continue"), (b"accept", b"*/*")],
        client="10.0.0.1",
        scheme="https",
    )  # fmt: skip
    names = [name for name, _ in inbound.forward]
    assert names == [
        b"idempotency-key",
        b"accept",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
    ]
    assert (inbound.idempotency_key, inbound.content_length) == (True, 12)
    out = response_headers([(b"Server", b"u"), (b"Keep-Alive", b"5"), (b"X-A", b"1")], "rid")
    assert out == [(b"x-a", b"1"), (b"x-request-id", b"rid")]


def test_merge_sorts_pages_and_names_missing_regions() -> None:
    answers = {
        "eu-west": RegionAnswer(
            "ok", items=[{"starts_at": "2030-01-02T00:00:00Z"}, {"starts_at": "2030-01-04"}]
        ),
        "us-east": RegionAnswer(
            "ok", items=[{"starts_at": "2030-01-03T01:00:00+01:00"}, {"starts_at": None}]
        ),
        "ap-south": RegionAnswer("timeout"),
    }
    result = merge(answers, kind="t", sort_key="starts_at", newest_first=False, limit=2, offset=1)
    assert [item["starts_at"] for item in result.items] == [
        "2030-01-03T01:00:00+01:00",
        "2030-01-04",
    ]
    assert result.unavailable_regions == ["ap-south"]
    query = region_query([("q", "dune"), ("limit", "5"), ("offset", "9")], limit=5, offset=10)
    assert query == "q=dune&limit=15&offset=0"


def test_access_log_lines_carry_the_request_id(capfd: pytest.CaptureFixture[str]) -> None:
    access = AccessLog("router", batch=2)
    access.record("rid-1", {"status": 200})
    assert capfd.readouterr().err == ""  # batched
    access.record("rid-2", {"status": 503})
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert [(line["request_id"], line["status"]) for line in lines] == [
        ("rid-1", 200),
        ("rid-2", 503),
    ]
    assert lines[0]["ts"].endswith("+00:00")


def test_trusted_proxies_name_the_rightmost_untrusted_hop() -> None:
    trusted = TrustedProxies([ip_network("10.0.0.0/8"), ip_network("fd00::/8")])
    assert trusted.client("192.0.2.1", ["203.0.113.9"]) == "192.0.2.1"  # an untrusted peer
    assert trusted.client("10.0.0.1", ["198.51.100.1, 203.0.113.9"]) == "203.0.113.9"
    assert trusted.client("10.0.0.1", ["198.51.100.1", "203.0.113.9, 10.2.3.4"]) == "203.0.113.9"
    assert trusted.client("10.0.0.1", ["203.0.113.9:5000, [fd00::1]:80"]) == "203.0.113.9"
    assert trusted.client("10.0.0.1", ["10.9.9.9, 10.0.0.2"]) == "10.9.9.9"  # all trusted
    assert trusted.client("10.0.0.1", ["203.0.113.9, junk"]) == "10.0.0.1"  # stop at garbage
    assert trusted.client("10.0.0.1", []) == "10.0.0.1"
    assert TrustedProxies([]).client("10.0.0.1", ["203.0.113.9"]) == "10.0.0.1"


def test_client_forwarding_headers_are_replaced() -> None:
    raw = [(b"x-forwarded-for", b"198.51.100.1"), (b"forwarded", b"for=1.2.3.4"),
           (b"x-real-ip", b"1.2.3.4"), (b"x-forwarded-proto", b"https")]  # fmt: skip
    inbound = read_request_headers(raw, client="192.0.2.7", scheme="http")
    assert inbound.client == "192.0.2.7"
    assert [h for h in inbound.forward if h[0] != b"x-request-id"] == [
        (b"x-forwarded-for", b"192.0.2.7"),
        (b"x-forwarded-proto", b"http"),
    ]
    behind = read_request_headers(
        raw, client="10.0.0.1", scheme="http", trusted=TrustedProxies([ip_network("10.0.0.0/8")])
    )
    assert behind.client == "198.51.100.1"
    assert (b"x-forwarded-proto", b"https") in behind.forward
