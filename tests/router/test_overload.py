"""Overload rules: the retry budget, the in-flight cap and payments' bound, timed-out keyed writes."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from common.ids import new_id
from harness.procs import Proc, metric, router
from router.config import RouterSettings
from router.upstreams.budget import RetryBudget
from router.upstreams.http1 import Http1Pool
from router.upstreams.pool import Endpoint, Health, RegionPool
from router.upstreams.send import Outbound, RegionOverloaded, Sender, UpstreamFailed
from tests.router.conftest import fast_counts


def _endpoint(url: str, region: str) -> Endpoint:
    client = Http1Pool(url, limit=8, keepalive=4, connect_timeout=0.3, read_timeout=1)
    return Endpoint(region=region, url=url, client=client)


def _request(
    method: str, path: str = "/echo", *, key: bool = False, payment: bool = False
) -> Outbound:
    return Outbound(
        method=method,
        path=path,
        headers=[(b"idempotency-key", b"k-1")] if key else [],
        body=b"{}" if method == "POST" else None,
        repeatable=method == "GET" or key,
        deadline=time.monotonic() + 2,
        priority=payment,
        payment=payment,
    )


async def _misbehaving(answer: bool) -> tuple[asyncio.Server, list[int]]:
    """A server that reads each request, then hangs up (`answer`) or never answers."""
    received: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        received.append(1)
        if not answer:
            await reader.read()  # until the router gives up and closes
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), received


def _url(server: asyncio.Server) -> str:
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_the_budget_allows_a_fraction_of_requests_plus_a_floor() -> None:
    now = [100.0]
    budget = RetryBudget("budget-unit", ratio=0.2, floor=2, window=10, clock=lambda: now[0])
    for _ in range(10):
        budget.request()
    assert [budget.try_retry() for _ in range(5)] == [True] * 4 + [False]
    now[0] += 5
    assert not budget.try_retry()  # half a window later the spent retries still count
    now[0] += 6
    assert budget.try_retry()  # a whole window later they have expired


def test_retries_stop_when_the_budget_is_spent() -> None:
    region = "budget-drop"
    settings = RouterSettings(
        retry_budget=2, retry_backoff_seconds=0.001, retry_ratio=0.2, retry_floor=2
    )

    async def scenario() -> None:
        server, received = await _misbehaving(answer=True)
        async with server:
            sender = Sender(settings, Health(settings))
            pool = RegionPool(region, [_endpoint(_url(server), region)])
            for _ in range(10):
                with pytest.raises(UpstreamFailed) as failed:
                    await sender.send(pool, _request("GET"))
                assert failed.value.kind == "connection"  # the original error, at once
            # Without a budget: 10 x 3 attempts; with it: 10 + floor + 20 % of the requests.
            assert len(received) == 14

    asyncio.run(scenario())
    exhausted = REGISTRY.get_sample_value("router_retry_budget_exhausted_total", {"region": region})
    assert exhausted == 9  # one refusal per failed request beyond the budget


def test_a_timed_out_keyed_write_is_retried_once_only() -> None:
    region = "budget-slow"
    settings = RouterSettings(
        retry_budget=2, retry_backoff_seconds=0.001, attempt_timeout_seconds=0.2
    )

    async def scenario() -> None:
        server, received = await _misbehaving(answer=False)
        async with server:
            sender = Sender(settings, Health(settings))
            slow = [_endpoint(_url(server), region) for _ in range(3)]
            for method, key, attempts in (("POST", True, 2), ("GET", False, 3)):
                received.clear()
                with pytest.raises(UpstreamFailed) as failed:
                    await sender.send(RegionPool(region, slow), _request(method, key=key))
                assert (failed.value.kind, len(received)) == ("timeout", attempts)

    asyncio.run(scenario())


async def _busy(
    sender: Sender, pool: RegionPool, only: Endpoint, n: int
) -> list[asyncio.Task[Any]]:
    """`n` slow GETs in flight on the pool's only endpoint."""
    slow = [
        asyncio.create_task(sender.send(pool, _request("GET", "/slow?s=0.5"))) for _ in range(n)
    ]
    while only.in_flight < n:
        await asyncio.sleep(0.005)
    return slow


def test_a_full_endpoint_refuses_at_once(upstreams: dict[str, Proc]) -> None:
    settings = RouterSettings(max_in_flight_per_endpoint=2)

    async def scenario() -> None:
        sender = Sender(settings, Health(settings))
        only = _endpoint(upstreams["c"].url, "us-east")
        pool = RegionPool("us-east", [only])
        slow = await _busy(sender, pool, only, 2)
        started = time.perf_counter()
        with pytest.raises(RegionOverloaded):
            await sender.send(pool, _request("GET"))
        assert time.perf_counter() - started < 0.4  # refused, not queued behind the 0.5 s ones
        for sent in await asyncio.gather(*slow):
            sent.done()
        sent = await sender.send(pool, _request("GET"))
        assert sent.response.status == 200
        sent.done()
        await only.client.close()

    asyncio.run(scenario())


def test_payments_go_past_the_cap_up_to_their_own_bound(upstreams: dict[str, Proc]) -> None:
    settings = RouterSettings(max_in_flight_per_endpoint=2, max_payments_in_flight_per_endpoint=1)

    async def scenario() -> None:
        sender = Sender(settings, Health(settings))
        only = _endpoint(upstreams["c"].url, "us-east")
        pool = RegionPool("us-east", [only])
        slow = await _busy(sender, pool, only, 2)
        with pytest.raises(RegionOverloaded):
            await sender.send(pool, _request("POST"))
        payment = asyncio.create_task(
            sender.send(pool, _request("POST", "/slow?s=0.5", payment=True))
        )
        while only.paying < 1:
            await asyncio.sleep(0.005)
        assert only.in_flight == 2  # the payment holds no slot of the cap
        with pytest.raises(RegionOverloaded):  # the payments' bound is full
            await sender.send(pool, _request("POST", payment=True))
        for sent in await asyncio.gather(*slow, payment):
            assert sent.response.status == 200
            sent.done()
        await only.client.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def capped_router(directory_url: str) -> Iterator[str]:
    """A router that lets one request at a time reach each endpoint, with no line to wait in."""
    with router(
        directory_url, max_in_flight_per_endpoint=1, line_max_per_region=0
    ).running() as url:
        yield url


def test_a_saturated_region_answers_503_region_overloaded(
    capped_router: str, upstreams: dict[str, Proc]
) -> None:
    only = upstreams["c"].url  # us-east's one endpoint
    with (
        httpx.Client(base_url=capped_router, timeout=5.0) as client,
        httpx.Client(base_url=capped_router, timeout=5.0) as other,
    ):
        slow = threading.Thread(target=other.get, args=("/regions/us-east/slow?s=1",))
        slow.start()
        try:
            # Ask only once the slow request holds the slot: asked earlier, either may be refused.
            deadline = time.monotonic() + 3
            while _in_flight(client, only) != 1:
                assert time.monotonic() < deadline, "the slow request never took the slot"
                time.sleep(0.01)
            response = client.get("/regions/us-east/x")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json() == {
                "error": "region_overloaded",
                "detail": "region us-east is at capacity, retry shortly",
                "region": "us-east",
                "retry_after": 1,
            }
            assert client.get("/regions/eu-west/x").status_code == 200  # other regions serve
        finally:
            slow.join()
        deadline = time.monotonic() + 3  # the slot is freed just after the answer is written
        while _in_flight(client, only) != 0:
            assert time.monotonic() < deadline, "the slow request never left the slot"
            time.sleep(0.01)
        assert client.get("/regions/us-east/x").status_code == 200
        assert metric(client, "router_region_overloaded_total", region="us-east") == 1


def _in_flight(client: httpx.Client, endpoint: str) -> float:
    """Requests the router has in flight to a us-east endpoint."""
    return metric(client, "router_endpoint_in_flight", region="us-east", endpoint=endpoint)


@pytest.fixture(scope="module")
def paying_router(directory_url: str) -> Iterator[str]:
    """A router with one slot per endpoint, one for payments, and no line to wait in."""
    with router(
        directory_url,
        max_in_flight_per_endpoint=1,
        max_payments_in_flight_per_endpoint=1,
        line_max_per_region=0,
    ).running() as url:
        yield url


def test_fast_posts_keep_the_cap_and_the_payments_bound(
    paying_router: str, upstreams: dict[str, Proc]
) -> None:
    only = upstreams["c"].url  # us-east's one endpoint
    payment = f"/reservations/{new_id('res', 'us-east')}/payments"
    hold = f"/shows/{new_id('show', 'us-east')}/holds"
    with httpx.Client(base_url=paying_router, timeout=10.0) as client:
        # A payment and a GET at once leave the router two idle connections to us-east.
        warm = [
            threading.Thread(
                target=client.post, args=(f"{payment}?sleep=0.3",), kwargs={"json": {}}
            ),
            threading.Thread(target=client.get, args=("/regions/us-east/slow?s=0.3",)),
        ]
        _run_while(warm, lambda: None)
        slow_get = threading.Thread(target=client.get, args=("/regions/us-east/slow?s=4",))
        slow_pay = threading.Thread(
            target=client.post, args=(f"{payment}?sleep=3",), kwargs={"json": {}}
        )

        def at_the_cap() -> None:
            _wait_in_flight(client, only, 1)
            before = fast_counts(client)
            assert _overloaded(client.post(hold, json={}))  # a new hold: the cap holds
            assert client.post(payment, json={}).status_code == 200  # a payment: its own bound
            after = fast_counts(client)
            assert after["answered"] - before["answered"] == 1  # the payment, on the fast path
            assert after["resumed"] - before["resumed"] == 1  # the hold, refused by ProxyApp
            _run_while([slow_pay], at_both)

        def at_both() -> None:
            _wait_in_flight(client, only, 1, payments=1)
            assert _overloaded(client.post(payment, json={}))  # the payments' bound is full too

        def at_the_payments_bound() -> None:
            _wait_in_flight(client, only, 0, payments=1)
            assert _overloaded(client.post(payment, json={}))
            assert client.post(hold, json={}).status_code == 200  # the cap is free for holds

        _run_while([slow_get], at_the_cap)
        slow_pay = threading.Thread(
            target=client.post, args=(f"{payment}?sleep=3",), kwargs={"json": {}}
        )
        _run_while([slow_pay], at_the_payments_bound)


def _run_while(threads: list[threading.Thread], check: Callable[[], None]) -> None:
    """Start `threads`, run `check` meanwhile, and join them whatever it did."""
    for thread in threads:
        thread.start()
    try:
        check()
    finally:
        for thread in threads:
            thread.join()


def _wait_in_flight(client: httpx.Client, endpoint: str, count: int, payments: int = 0) -> None:
    deadline = time.monotonic() + 5
    while (_in_flight(client, endpoint), _paying(client, endpoint)) != (count, payments):
        assert time.monotonic() < deadline, f"never {count} in flight and {payments} payments"
        time.sleep(0.01)


def _paying(client: httpx.Client, endpoint: str) -> float:
    """Payments the router has in flight to a us-east endpoint."""
    return metric(client, "router_endpoint_payments_in_flight", region="us-east", endpoint=endpoint)


def _overloaded(response: httpx.Response) -> bool:
    return response.status_code == 503 and response.json()["error"] == "region_overloaded"
