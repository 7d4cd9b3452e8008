"""The line in front of a saturated region: wait in arrival order, refuse only when full or late."""

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY

from harness.procs import Proc, metric, router
from router.config import RouterSettings
from router.upstreams.http1 import Http1Pool
from router.upstreams.pool import Endpoint, Health, RegionPool
from router.upstreams.send import Outbound, RegionOverloaded, Sender


def _pool(url: str, region: str, max_waiting: int) -> RegionPool:
    client = Http1Pool(url, limit=8, keepalive=4, connect_timeout=0.3, read_timeout=5)
    return RegionPool(region, [Endpoint(region=region, url=url, client=client)], max_waiting)


def _get(path: str, *, priority: bool = False, method: str = "GET") -> Outbound:
    return Outbound(
        method=method,
        path=path,
        headers=[],
        body=b"{}" if method == "POST" else None,
        repeatable=method == "GET",
        deadline=time.monotonic() + 10,
        priority=priority,
    )


async def _holding_the_slot(sender: Sender, pool: RegionPool, seconds: float) -> asyncio.Task[None]:
    """One slow request in the only slot, until it is answered."""

    async def slow() -> None:
        sent = await sender.send(pool, _get(f"/slow?s={seconds}"))
        sent.done()

    task = asyncio.create_task(slow())
    while pool.endpoints[0].in_flight < 1:
        await asyncio.sleep(0.005)
    return task


async def _enter(sender: Sender, pool: RegionPool, request: Outbound, served: list[str]) -> None:
    sent = await sender.send(pool, request)
    served.append(request.path)
    sent.done()


async def _queued(pool: RegionPool, n: int) -> None:
    while len(pool.line) < n:
        await asyncio.sleep(0.005)


def test_requests_past_the_cap_wait_and_are_served_in_arrival_order(
    upstreams: dict[str, Proc],
) -> None:
    region = "line-order"
    settings = RouterSettings(max_in_flight_per_endpoint=1, line_timeout_seconds=10)

    async def scenario() -> list[str]:
        sender = Sender(settings, Health(settings))
        pool = _pool(upstreams["c"].url, region, max_waiting=16)
        slow = await _holding_the_slot(sender, pool, 0.3)
        served: list[str] = []
        waiting = []
        for n in range(6):  # each joins the line before the next arrives
            waiting.append(asyncio.create_task(_enter(sender, pool, _get(f"/x?n={n}"), served)))
            await _queued(pool, n + 1)
        await asyncio.gather(slow, *waiting)
        await pool.endpoints[0].client.close()
        return served

    assert asyncio.run(scenario()) == [f"/x?n={n}" for n in range(6)]
    admitted = REGISTRY.get_sample_value(
        "router_line_waits_total", {"region": region, "outcome": "admitted"}
    )
    assert admitted == 6


def test_check_ins_waiting_go_before_earlier_browsing(upstreams: dict[str, Proc]) -> None:
    settings = RouterSettings(max_in_flight_per_endpoint=1)

    async def scenario() -> list[str]:
        sender = Sender(settings, Health(settings))
        pool = _pool(upstreams["c"].url, "line-priority", max_waiting=16)
        slow = await _holding_the_slot(sender, pool, 0.3)
        served: list[str] = []
        browse = asyncio.create_task(_enter(sender, pool, _get("/x?browse"), served))
        await _queued(pool, 1)
        # A check-in (or an admitted customer's hold): CPU work that finishes a sale.
        check_in = _get("/x?check-in", priority=True, method="POST")
        checking = asyncio.create_task(_enter(sender, pool, check_in, served))
        await _queued(pool, 2)
        await asyncio.gather(slow, browse, checking)
        await pool.endpoints[0].client.close()
        return served

    assert asyncio.run(scenario()) == ["/x?check-in", "/x?browse"]


def test_a_full_line_refuses_at_once_and_a_late_wait_at_the_deadline(
    upstreams: dict[str, Proc],
) -> None:
    region = "line-full"
    settings = RouterSettings(max_in_flight_per_endpoint=1, line_timeout_seconds=0.3)

    async def scenario() -> None:
        sender = Sender(settings, Health(settings))
        pool = _pool(upstreams["c"].url, region, max_waiting=1)
        slow = await _holding_the_slot(sender, pool, 1.5)
        waiter = asyncio.create_task(sender.send(pool, _get("/x?late")))
        await _queued(pool, 1)
        with pytest.raises(RegionOverloaded):  # the line is full: refused without waiting
            await sender.send(pool, _get("/x?full"))
        with pytest.raises(RegionOverloaded):  # waited its 0.3 s, the slot never came free
            await waiter
        assert len(pool.line) == 0
        await slow
        await pool.endpoints[0].client.close()

    asyncio.run(scenario())
    for outcome in ("full", "deadline"):
        count = REGISTRY.get_sample_value(
            "router_line_waits_total", {"region": region, "outcome": outcome}
        )
        assert count == 1, outcome


@pytest.fixture(scope="module")
def lined_router(directory_url: str) -> Iterator[str]:
    """A router that lets one request at a time reach each endpoint; the rest wait in line."""
    with router(
        directory_url, max_in_flight_per_endpoint=1, line_timeout_seconds=10
    ).running() as url:
        yield url


def test_a_burst_past_the_cap_is_served_not_refused(
    lined_router: str, upstreams: dict[str, Proc]
) -> None:
    statuses: list[int] = []

    def customer() -> None:
        with httpx.Client(base_url=lined_router, timeout=15.0) as client:
            statuses.append(client.get("/regions/us-east/slow?s=0.05").status_code)

    customers = [threading.Thread(target=customer) for _ in range(20)]
    for thread in customers:
        thread.start()
    for thread in customers:
        thread.join()

    assert statuses == [200] * 20  # one slot, twenty at once: all served, none refused
    with httpx.Client(base_url=lined_router) as client:
        assert metric(client, "router_line_waits_total", region="us-east", outcome="admitted") > 0
        assert metric(client, "router_line_length", region="us-east") == 0
