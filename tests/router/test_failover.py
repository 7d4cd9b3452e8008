"""Health, failover and partial fan-out with upstream processes SIGKILLed under traffic."""

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.ports import dead_url
from harness.procs import FakeDirectory, Proc, metric, wait_all_healthy
from harness.tokens import TestIssuer
from schemas.auth import Role
from tests.support.poll import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def eu_west(upstreams: dict[str, Proc], router_url: str) -> Iterator[tuple[Proc, Proc]]:
    """The two eu-west endpoints, both in rotation; restarted after the test if it killed them."""
    wait_all_healthy(router_url)
    yield upstreams["a"], upstreams["b"]
    for proc in (upstreams["a"], upstreams["b"]):
        if proc.proc is None or proc.proc.poll() is not None:
            proc.start()


class Traffic:
    """Steady GETs, keyed writes and unkeyed writes to eu-west, recording every outcome."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.results: dict[str, list[tuple[str, int]]] = {"get": [], "keyed": [], "unkeyed": []}
        self.running = True
        self._ids = itertools.count()

    async def until(self, gets: int, timeout: float = 15.0) -> None:
        """Wait until `gets` more GETs have been answered."""
        target = len(self.results["get"]) + gets
        deadline = time.monotonic() + timeout
        while len(self.results["get"]) < target and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def run(self, workers: int = 8) -> None:
        """Send until `running` is cleared."""
        async with httpx.AsyncClient(base_url=self.base, timeout=5.0) as client:
            await asyncio.gather(*(self._worker(client) for _ in range(workers)))

    async def _worker(self, client: httpx.AsyncClient) -> None:
        while self.running:
            n = next(self._ids)
            kind = ("get", "keyed", "unkeyed")[n % 3]
            write_id = f"w{n}-{uuid.uuid4().hex[:6]}"
            headers = {"X-Write-Id": write_id}
            if kind == "keyed":
                headers["Idempotency-Key"] = write_id
            method = "GET" if kind == "get" else "POST"
            try:
                response = await client.request(method, "/regions/eu-west/echo", headers=headers)
                status = response.status_code
            except httpx.HTTPError:
                status = -1
            self.results[kind].append((write_id, status))


def _write_counts(write_log: Path) -> Counter[str]:
    return Counter(line.split()[1] for line in write_log.read_text().splitlines())


def test_killing_one_endpoint_loses_no_read_and_repeats_no_unkeyed_write(
    router_url: str, eu_west: tuple[Proc, Proc], write_log: Path
) -> None:
    a, _ = eu_west

    traffic = Traffic(router_url)

    async def scenario() -> None:
        load = asyncio.create_task(traffic.run())
        await traffic.until(gets=20)
        a.kill()
        await traffic.until(gets=40)
        traffic.running = False
        await load

    asyncio.run(scenario())
    results = traffic.results
    counts = _write_counts(write_log)
    print({kind: Counter(status for _, status in rows) for kind, rows in results.items()})
    assert len(results["get"]) >= 60
    assert all(status == 200 for _, status in results["get"])
    assert all(status == 200 for _, status in results["keyed"])
    for write_id, status in results["unkeyed"]:
        assert counts[write_id] <= 1, write_id  # an unkeyed write is never sent twice
        if status == 200:
            assert counts[write_id] == 1


def test_region_down_is_a_fast_503_and_other_regions_keep_working(
    router_url: str, eu_west: tuple[Proc, Proc], upstreams: dict[str, Proc]
) -> None:
    a, b = eu_west
    with httpx.Client(base_url=router_url, timeout=5.0) as client:
        assert client.get("/regions/eu-west/x").status_code == 200
        a.kill()
        b.kill()
        started = time.perf_counter()
        response = client.get("/regions/eu-west/x")
        first_ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 503
        assert response.json() == {
            "error": "region_unavailable",
            "detail": "no healthy endpoint in region eu-west",
            "region": "eu-west",
        }
        assert int(response.headers["retry-after"]) >= 1
        started = time.perf_counter()
        assert client.get("/regions/eu-west/x").status_code == 503
        next_ms = (time.perf_counter() - started) * 1000
        print(f"503 after both killed: first {first_ms:.1f} ms, next {next_ms:.1f} ms")
        assert first_ms < 500
        assert next_ms < 100

        us = [client.get("/regions/us-east/x").status_code for _ in range(30)]
        assert us == [200] * 30

        partial = client.get("/search/shows").json()
        assert partial["regions"] == {"eu-west": "unavailable", "us-east": "ok"}
        assert partial["unavailable_regions"] == ["eu-west"]
        assert {item["id"].split("-")[1] for item in partial["items"]} == {"us"}

        a.start()
        deadline = time.monotonic() + 5
        while client.get("/regions/eu-west/x").status_code != 200:
            assert time.monotonic() < deadline, "endpoint not readmitted"
            time.sleep(0.05)
        metrics = client.get("/metrics").text
        assert 'router_endpoint_readmissions_total{region="eu-west"}' in metrics
        assert 'router_region_unavailable_total{region="eu-west"}' in metrics


def test_a_streak_of_5xx_ejects_one_endpoint_but_not_the_last(
    router_url: str, eu_west: tuple[Proc, Proc]
) -> None:
    with httpx.Client(base_url=router_url, timeout=5.0) as client:
        statuses = [client.get("/regions/eu-west/boom").status_code for _ in range(12)]
        assert statuses == [500] * 12  # upstream answers are relayed, never turned into 503
        metrics = client.get("/metrics").text
        assert 'router_endpoint_ejections_total{reason="5xx",region="eu-west"}' in metrics
        assert [client.get("/regions/us-east/boom").status_code for _ in range(6)] == [500] * 6
        assert 'reason="5xx",region="us-east"' not in client.get("/metrics").text


def test_a_slow_region_times_out_within_the_deadline(
    router_url: str, eu_west: tuple[Proc, Proc], write_log: Path
) -> None:
    with httpx.Client(base_url=router_url, timeout=10.0) as client:
        retried = metric(client, "router_retries_total", region="eu-west")
        response = client.get("/regions/eu-west/slow?s=4")
        assert response.status_code == 504  # before the 4 s answer: the deadline was kept
        assert response.json()["error"] == "upstream_timeout"
        # The GET was tried again, on the other endpoint, within the deadline.
        after_get = metric(client, "router_retries_total", region="eu-west")
        assert after_get > retried

        write_id = f"slow-{uuid.uuid4().hex[:8]}"
        response = client.post("/regions/eu-west/slow?s=4", headers={"X-Write-Id": write_id})
        assert response.status_code == 504
        wait_until(lambda: _write_counts(write_log).get(write_id) == 1)
        # A timed-out unkeyed write is not repeated: no retry was counted for it.
        assert metric(client, "router_retries_total", region="eu-west") == after_get


def test_map_refresh_adds_and_retires_endpoints(
    router_url: str, fake_directory: FakeDirectory, upstreams: dict[str, Proc], issuer: TestIssuer
) -> None:
    us_east = next(r for r in fake_directory.document["regions"] if r["code"] == "us-east")
    admin = issuer.headers(role=Role.admin)

    def us_east_view(client: httpx.Client) -> dict[str, str]:
        regions = client.get("/router/regions", headers=admin).json()["regions"]
        region = next(r for r in regions if r["code"] == "us-east")
        return {e["url"]: e["state"] for e in region["endpoints"]}

    with dead_url() as dead, httpx.Client(base_url=router_url, timeout=5.0) as client:
        us_east["endpoints"] = [upstreams["c"].url, dead]
        fake_directory.document["version"] = f"v-{uuid.uuid4().hex[:6]}"
        try:
            deadline = time.monotonic() + 5
            while us_east_view(client) != {upstreams["c"].url: "healthy", dead: "ejected"}:
                assert time.monotonic() < deadline, us_east_view(client)
                time.sleep(0.05)
            assert [client.get("/regions/us-east/x").status_code for _ in range(10)] == [200] * 10
        finally:
            us_east["endpoints"] = [upstreams["c"].url]
            fake_directory.document["version"] = f"v-{uuid.uuid4().hex[:6]}"
        deadline = time.monotonic() + 5
        while set(us_east_view(client)) != {upstreams["c"].url}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
