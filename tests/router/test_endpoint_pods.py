"""The in-flight cap is per pod: an endpoint that fronts several pods (a Service) takes more."""

import asyncio
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from harness.procs import Proc
from router.config import RouterSettings
from router.upstreams.pool import Endpoint, Health, RegionPool, Upstreams
from router.upstreams.send import Outbound, RegionOverloaded, Sender


def _get(path: str) -> Outbound:
    return Outbound(
        method="GET",
        path=path,
        headers=[],
        body=None,
        repeatable=True,
        deadline=time.monotonic() + 5,
        priority=False,
    )


async def _slow(sender: Sender, pool: RegionPool, only: Endpoint, n: int) -> list[Any]:
    tasks = [asyncio.create_task(sender.send(pool, _get("/slow?s=0.5"))) for _ in range(n)]
    deadline = time.monotonic() + 10
    while only.in_flight < n:
        assert time.monotonic() < deadline, f"{only.in_flight} of {n} in flight"
        await asyncio.sleep(0.005)
    return tasks


def test_an_endpoint_of_three_pods_takes_three_times_the_cap(upstreams: dict[str, Proc]) -> None:
    url = upstreams["c"].url
    settings = RouterSettings(max_in_flight_per_endpoint=2, endpoint_pods={url: 3})

    async def scenario() -> None:
        pool_set = Upstreams(settings)
        only = pool_set._endpoint("us-east", url)
        assert only.pods == 3
        pool = RegionPool("us-east", [only])
        sender = Sender(settings, Health(settings))
        slow = await _slow(sender, pool, only, 6)  # one endpoint, 2 per pod, 3 pods
        with pytest.raises(RegionOverloaded):
            await sender.send(pool, _get("/echo"))
        for sent in await asyncio.gather(*slow):
            sent.done()
        await only.client.close()

    asyncio.run(scenario())


def test_ready_pods_come_from_the_headless_service_within_the_most(
    upstreams: dict[str, Proc],
) -> None:
    url = upstreams["c"].url
    settings = RouterSettings(endpoint_pods={url: 12}, endpoint_pods_dns={url: "127.0.0.1"})

    async def scenario() -> None:
        pool_set = Upstreams(settings)
        endpoint = pool_set._endpoint("us-east", url)
        pool_set.regions["us-east"] = RegionPool("us-east", [endpoint])
        assert endpoint.pods == 12  # until counted, the most
        await pool_set.count_pods()
        assert endpoint.pods == 1  # one address behind the name: one ready pod
        labels = {"region": "us-east", "endpoint": url}
        capacity = REGISTRY.get_sample_value("router_endpoint_capacity", labels)
        assert capacity == settings.max_in_flight_per_endpoint  # one pod: the cap
        await endpoint.client.close()

    asyncio.run(scenario())
