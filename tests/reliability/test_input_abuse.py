"""Hostile input at the router and at the services: always a 4xx with the error body, never a 5xx."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from deploy.local.stack import LocalStack
from harness.tokens import TestIssuer
from schemas.auth import Role
from tests.reliability.kit import Arena, create_arena, region_url

SQL_PAYLOADS = (
    "' OR '1'='1",
    "'; DROP TABLE shows; --",
    '" OR ""="',
    "\\'; SELECT pg_sleep(5);--",
    "%_\\",
)
NUL = "abc\x00def"


@dataclass
class Target:
    """Where hostile requests go: the router's public paths or one replica directly."""

    name: str
    scoped: str  # base of region-scoped collections
    direct: str  # base of resource-addressed paths


@pytest.fixture(scope="module")
def arena(stack: LocalStack, minter: TestIssuer) -> Arena:
    """A small show for the hostile requests to aim at."""
    return create_arena(stack, minter, rows=2, cols=5)


@pytest.fixture(scope="module", params=["router", "regional_api"])
def target(request: pytest.FixtureRequest, stack: LocalStack) -> Iterator[Target]:
    """Each test runs through the router and straight at an eu-west replica."""
    if request.param == "router":
        yield Target("router", region_url(stack), stack.router_url)
    else:
        replica = stack.regional_urls("eu-west")[0]
        yield Target("regional_api", replica, replica)


def _assert_refused(response: httpx.Response, allowed: tuple[int, ...] = ()) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if allowed:
        assert response.status_code in allowed, (response.status_code, response.text[:300])
    body = response.json()
    assert {"error", "detail"} <= set(body), body


def _assert_healthy(target: Target, arena: Arena, minter: TestIssuer) -> None:
    assert httpx.get(f"{target.direct}/shows/{arena.show_id}", timeout=10.0).status_code == 200
    ready = httpx.get(f"{target.scoped}/readyz", timeout=10.0)
    assert ready.status_code == 200, ready.text


def _post(url: str, minter: TestIssuer, **kwargs: Any) -> httpx.Response:
    headers = minter.headers("usr-abuser") | kwargs.pop("headers", {})
    return httpx.post(url, headers=headers, timeout=30.0, **kwargs)


def _hold_raw(
    target: Target, arena: Arena, minter: TestIssuer, body: str | bytes
) -> httpx.Response:
    """POST `body` as JSON, byte for byte, to the arena show's holds."""
    url = f"{target.direct}/shows/{arena.show_id}/holds"
    return _post(url, minter, content=body, headers={"Content-Type": "application/json"})


def test_oversized_body(target: Target, arena: Arena, minter: TestIssuer) -> None:
    """A 2 MiB body is refused (413 at the router's limit, 413/422 at the service)."""
    body = json.dumps({"seat_ids": list(range(1, 300_000))})
    response = _hold_raw(target, arena, minter, body)
    _assert_refused(response, (413,) if target.name == "router" else (413, 422))
    _assert_healthy(target, arena, minter)


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
def test_deeply_nested_json(target: Target, arena: Arena, minter: TestIssuer, depth: int) -> None:
    """Nesting deep enough to blow a recursive parser is refused."""
    body = '{"seat_ids": ' + "[" * depth + "1" + "]" * depth + "}"
    response = _hold_raw(target, arena, minter, body)
    _assert_refused(response)
    _assert_healthy(target, arena, minter)


@pytest.mark.parametrize(
    "query", ["limit=100000000", "limit=0", "limit=-1", "offset=-5", "limit=abc", "limit=1e309"]
)
def test_page_sizes(target: Target, arena: Arena, minter: TestIssuer, query: str) -> None:
    """Absurd page sizes and offsets get 422."""
    response = httpx.get(f"{target.scoped}/shows?{query}", timeout=10.0)
    _assert_refused(response, (422,))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("best-available", {"count": 0}),
        ("best-available", {"count": -3}),
        ("best-available", {"count": 10**9}),
        ("best-available", {"count": 2**70}),
        ("best-available", {"count": "two"}),
        ("holds", {"seat_ids": []}),
        ("holds", {"seat_ids": [-1]}),
        ("holds", {"seat_ids": [0]}),
        ("holds", {"seat_ids": [2**64]}),
        ("holds", {"seat_ids": [1, 1]}),
        ("holds", {"seat_ids": list(range(1, 500))}),
    ],
)
def test_seat_counts(
    target: Target, arena: Arena, minter: TestIssuer, path: str, body: dict[str, Any]
) -> None:
    """Zero, negative, huge and malformed seat requests get 422 and hold nothing."""
    response = _post(f"{target.direct}/shows/{arena.show_id}/{path}", minter, json=body)
    _assert_refused(response, (422,))


@pytest.mark.parametrize(
    "content",
    [b'\xff\xfe{"seat_ids": [1]}', b'{"seat_ids": [1], "x": "\xc3\x28"}', b"\x80\x81\x82"],
)
def test_non_utf8_bodies(target: Target, arena: Arena, minter: TestIssuer, content: bytes) -> None:
    """Bodies that are not UTF-8 are refused with the error body."""
    response = _hold_raw(target, arena, minter, content)
    _assert_refused(response)
    _assert_healthy(target, arena, minter)


def _string_probes(target: Target, arena: Arena, payload: str) -> list[tuple[str, str, Any]]:
    """(method, url, json body) for every string field and query parameter we can reach."""
    scoped, direct = target.scoped, target.direct
    params = ["cinema_id", "movie_id", "q", "city", "date_from", "date_to"]
    probes: list[tuple[str, str, Any]] = [
        ("GET", f"{scoped}/shows", {"params": {n: payload}}) for n in params
    ]
    probes += [
        ("GET", f"{scoped}/cinemas", {"params": {"city": payload}}),
        ("GET", f"{scoped}/me/reservations", {"params": {"status": payload}}),
        ("GET", f"{scoped}/reports/movies", {"params": {"date_from": payload}}),
        ("GET", f"{direct}/shows/{arena.show_id}/reservations", {"params": {"status": payload}}),
        ("POST", f"{scoped}/movies", {"json": {"title": payload, "duration_minutes": 90}}),
        ("POST", f"{direct}/cinemas/{arena.cinema_id}/tickets/validate", {"json": {"code": payload}}),
        ("POST", f"{direct}/shows/{arena.show_id}/cancel", {"json": {"reason": payload, "x": 1}}),
        ("POST", f"{direct}/shows/{arena.show_id}/sales",
         {"json": {"seat_ids": [arena.seat_ids[-1]], "method": "card", "card_number": payload}}),
    ]  # fmt: skip
    if "\x00" not in payload:  # a NUL cannot even be sent in a header
        key = {"Idempotency-Key": payload}
        probes.append(("POST", f"{direct}/shows/{arena.show_id}/holds",
                       {"json": {"seat_ids": [arena.seat_ids[0]]}, "headers": key}))  # fmt: skip
    return probes


@pytest.mark.parametrize("payload", [*SQL_PAYLOADS, NUL])
def test_sql_metacharacters_in_every_field(
    target: Target, arena: Arena, minter: TestIssuer, payload: str
) -> None:
    """SQL metacharacters and NUL bytes in strings and query values: no 5xx, no leaked rows."""
    admin = minter.headers("usr-admin", role=Role.admin)
    failures = []
    for method, url, kwargs in _string_probes(target, arena, payload):
        kwargs = dict(kwargs or {})
        headers = admin | kwargs.pop("headers", {})
        response = httpx.request(method, url, headers=headers, timeout=15.0, **kwargs)
        if response.status_code >= 500:
            failures.append(
                f"{method} {url} {kwargs}: {response.status_code} {response.text[:200]}"
            )
        elif response.status_code >= 400 and "error" not in response.json():
            failures.append(f"{method} {url}: {response.status_code} without error body")
        elif response.status_code == 200 and "/shows" in url and method == "GET":
            items = response.json()
            listed = items["items"] if isinstance(items, dict) else items
            assert listed == [], (url, kwargs, listed[:1])
    assert failures == [], "\n".join(failures)
    for path in (f"/shows/{payload}", f"/reservations/res-eu-west-{payload}"):
        response = httpx.get(target.direct + path.replace("\x00", "%00"), headers=admin)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    _assert_healthy(target, arena, minter)


@pytest.mark.parametrize(
    "suffix", ["/shows?q=%FF%FE%FD", "/shows?city=%C3%28", "/cinemas?city=%80"]
)
def test_non_utf8_query_values(
    target: Target, arena: Arena, minter: TestIssuer, suffix: str
) -> None:
    """Percent-encoded bytes that are not UTF-8 never cause a 5xx or leak rows."""
    response = httpx.get(target.scoped + suffix, timeout=10.0)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        _assert_refused(response)
    elif suffix.startswith("/shows"):
        body = response.json()
        assert (body["items"] if isinstance(body, dict) else body) == []


def test_non_utf8_path_ids(target: Target, arena: Arena, minter: TestIssuer) -> None:
    """Ids made of bytes that are not UTF-8 get a 4xx with the error body."""
    for path in ("/shows/%FF%FE", "/reservations/res-eu-west-%C3%28", "/cinemas/%80/shows"):
        response = httpx.get(target.direct + path, headers=minter.headers("usr-x"), timeout=10.0)
        _assert_refused(response)
    _assert_healthy(target, arena, minter)
