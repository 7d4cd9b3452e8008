"""The router keeps routing while the directory is down, and starts from the static file."""

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from common.ids import new_id
from harness.live import live_server
from harness.ports import dead_url
from harness.procs import (
    FakeDirectory,
    Proc,
    directory_map,
    metric,
    router,
)
from tests.support.poll import wait_until

FAILED_REFRESH = {"trigger": "periodic", "outcome": "failed"}


@pytest.fixture(scope="module")
def orphans(
    fake_directory: FakeDirectory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Proc, Proc]]:
    """Two routers, started together: one whose directory then dies, one that never had one."""
    static = tmp_path_factory.mktemp("static") / "router.json"
    document = directory_map("static-1", {}, {})
    document["regions"] = fake_directory.document["regions"]
    static.write_text(json.dumps(document))
    copy = json.loads(json.dumps(fake_directory.document))
    with dead_url() as nowhere:
        with live_server(FakeDirectory(copy, fake_directory.jwks)) as url:
            lost = router(url).start(wait_path=None)
            never = router(nowhere, static_config_file=static).start(wait_path=None)
            lost.wait("/readyz")
        try:
            never.wait("/readyz")
            yield lost, never
        finally:
            lost.kill()
            never.kill()


def test_routing_survives_the_directory_going_down(
    orphans: tuple[Proc, Proc], fake_directory: FakeDirectory
) -> None:
    lost, _ = orphans
    cinema = fake_directory.document["cinemas"][0]["id"]
    with httpx.Client(base_url=lost.url, timeout=5.0) as client:
        # A periodic refresh has failed since the directory went down.
        wait_until(lambda: metric(client, "router_map_refreshes_total", **FAILED_REFRESH) > 0)
        assert client.get(f"/cinemas/{cinema}/shows").json()["region"] == "eu-west"
        assert client.get("/regions/us-east/movies").json()["region"] == "us-east"
        started = time.perf_counter()
        unknown = client.get(f"/cinemas/{new_id('cin', 'eu-west')}/shows")
        assert unknown.status_code == 404
        assert time.perf_counter() - started < 3
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").text
        assert 'router_map_refreshes_total{outcome="failed",trigger="periodic"}' in metrics


def test_start_with_the_directory_down_uses_the_static_file(orphans: tuple[Proc, Proc]) -> None:
    _, never = orphans
    with httpx.Client(base_url=never.url, timeout=5.0) as client:
        assert client.get("/regions/eu-west/movies").json()["region"] == "eu-west"
        show = new_id("show", "us-east")
        assert client.get(f"/shows/{show}").json()["region"] == "us-east"
        view = client.get("/router/regions").json()
        assert (view["map_source"], view["map_version"]) == ("static", "static-1")
        started = time.perf_counter()
        login = client.post("/auth/login", json={})
        assert login.status_code == 503
        assert login.json()["error"] == "upstream_unavailable"
        assert time.perf_counter() - started < 1


def test_refreshes_ask_with_the_etag_and_keep_the_map_on_304(router_url: str) -> None:
    not_modified = {"trigger": "periodic", "outcome": "not_modified"}
    with httpx.Client(base_url=router_url, timeout=5.0) as client:
        wait_until(lambda: metric(client, "router_map_refreshes_total", **not_modified) > 0)
        assert client.get("/regions/us-east/movies").json()["region"] == "us-east"
