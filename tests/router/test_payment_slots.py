"""Payments at the provider hold no slot of the router's cap: holds pass them, payments have a bound."""

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from common.ids import new_id
from harness.procs import Proc, metric, router
from router.config import RouterSettings
from router.upstreams.http1 import Http1Pool
from router.upstreams.pool import Endpoint, Health, RegionPool
from router.upstreams.send import Outbound, Sender
from tests.router.conftest import ASGI_ONLY

PAYMENTS = 6  # at the provider at once: three times the cap below
LINE_SECONDS = 1  # how long a request waits for a slot
PROVIDER_SECONDS = 2.5  # past the line's timeout: a hold that waits for them fails either way


@pytest.fixture(scope="module", params=["fast path", "ASGI path"])
def capped_router(request: pytest.FixtureRequest, directory_url: str) -> Iterator[str]:
    """A router with two slots per endpoint (and the default bound of payments)."""
    proc = router(directory_url, max_in_flight_per_endpoint=2, line_timeout_seconds=LINE_SECONDS)
    if request.param == "ASGI path":
        proc.http = ASGI_ONLY
    with proc.running() as url:
        yield url


def test_holds_are_served_while_payments_wait_at_the_provider(
    capped_router: str, upstreams: dict[str, Proc]
) -> None:
    only = upstreams["c"].url  # us-east's one endpoint
    payment = f"/reservations/{new_id('res', 'us-east')}/payments?sleep={PROVIDER_SECONDS}"
    show = new_id("show", "us-east")
    paid: list[int] = []
    with httpx.Client(base_url=capped_router, timeout=15.0) as client:

        def pay() -> None:
            paid.append(client.post(payment, json={}).status_code)

        payers = [threading.Thread(target=pay) for _ in range(PAYMENTS)]
        for thread in payers:
            thread.start()
        try:
            deadline = time.monotonic() + 5
            while _sent(client, only) != PAYMENTS:
                assert time.monotonic() < deadline, "the payments never all reached us-east"
                time.sleep(0.01)
            for _ in range(3):
                assert client.post(f"/shows/{show}/holds", json={}).status_code == 200
                assert client.get(f"/shows/{show}/seats").status_code == 200
            assert paid == []  # served while every payment still waits at the provider
            assert _gauge(client, "router_endpoint_payments_in_flight", only) == PAYMENTS
            assert _gauge(client, "router_endpoint_in_flight", only) == 0
        finally:
            for thread in payers:
                thread.join()
    assert paid == [200] * PAYMENTS


def _gauge(client: httpx.Client, name: str, endpoint: str) -> float:
    return metric(client, name, region="us-east", endpoint=endpoint)


def _sent(client: httpx.Client, endpoint: str) -> float:
    """Requests of any kind the router has in flight to the endpoint."""
    return sum(
        _gauge(client, name, endpoint)
        for name in ("router_endpoint_in_flight", "router_endpoint_payments_in_flight")
    )


def _payment(path: str) -> Outbound:
    return Outbound(
        method="POST",
        path=path,
        headers=[],
        body=b"{}",
        repeatable=False,
        deadline=time.monotonic() + 10,
        priority=True,
        payment=True,
    )


def test_a_waiting_payment_takes_the_next_payment_slot_not_a_holds(
    upstreams: dict[str, Proc],
) -> None:
    settings = RouterSettings(
        max_in_flight_per_endpoint=1, max_payments_in_flight_per_endpoint=1, line_timeout_seconds=10
    )

    async def scenario() -> list[str]:
        sender = Sender(settings, Health(settings))
        url = upstreams["c"].url
        client = Http1Pool(url, limit=8, keepalive=4, connect_timeout=0.3, read_timeout=5)
        only = Endpoint(region="pay-line", url=url, client=client)
        pool = RegionPool("pay-line", [only], max_waiting=16)
        served: list[str] = []

        async def enter(request: Outbound) -> None:
            sent = await sender.send(pool, request)
            served.append(request.path)
            sent.done()

        first = asyncio.create_task(enter(_payment("/x?first&sleep=0.5")))
        while only.paying < 1:
            await asyncio.sleep(0.005)
        waiting = asyncio.create_task(enter(_payment("/x?second")))
        while len(pool.pay_line) < 1:
            await asyncio.sleep(0.005)
        for n in range(3):  # holds come and go: each freed slot of the cap is theirs
            hold = Outbound("POST", f"/x?hold={n}", [], b"{}", False, time.monotonic() + 10)
            await enter(hold)
        assert len(pool.pay_line) == 1  # still waiting for a payment's slot
        await asyncio.gather(first, waiting)
        await client.close()
        return served

    served = asyncio.run(scenario())
    assert served == ["/x?hold=0", "/x?hold=1", "/x?hold=2", "/x?first&sleep=0.5", "/x?second"]


def test_the_cap_and_the_payments_bound_must_fit_the_connection_pool() -> None:
    with pytest.raises(ValidationError, match="ROUTER_UPSTREAM_CONNECTIONS"):
        RouterSettings(upstream_connections=64, max_payments_in_flight_per_endpoint=64)
    RouterSettings(upstream_connections=80)  # 16 + 64: the defaults fit exactly
