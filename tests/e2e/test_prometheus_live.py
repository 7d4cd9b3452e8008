"""A real Prometheus scraping the e2e stack: every target up, router health series present."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.prometheus import PrometheusProcess, scrape_config
from deploy.local.stack import LocalStack
from harness.pg import free_port
from tests.support.poll import wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not installed (Debian package 'prometheus'; .ci/run installs it)",
)


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack) -> Iterator[PrometheusProcess]:
    """Prometheus on a free port with temporary storage, scraping every stack process."""
    directory = Path(tempfile.mkdtemp(prefix="cinema-prom-"))
    server = PrometheusProcess(directory, free_port(), scrape_config(stack))
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_every_process_is_scraped_and_up(prometheus: PrometheusProcess, stack: LocalStack) -> None:
    expected = {proc.url.removeprefix("http://") for proc in stack.processes.values()}

    seen: dict[str, str] = {}

    def all_up() -> bool:
        seen.clear()
        seen.update({t["labels"]["instance"]: t["health"] for t in prometheus.targets()})
        return {instance for instance, health in seen.items() if health == "up"} == expected

    try:
        wait_until(all_up, timeout=30.0)
    except AssertionError:
        raise AssertionError(f"targets {seen}, expected {expected} up") from None
    up = prometheus.query('up{job=~"router|global_api|regional_api"}')
    assert {r["metric"]["instance"] for r in up if r["value"][1] == "1"} == expected


def test_router_health_series_exist_per_region(prometheus: PrometheusProcess) -> None:
    def healthy_regions() -> set[str]:
        series = prometheus.query("max by (region) (router_endpoint_healthy)")
        return {s["metric"]["region"] for s in series if s["value"][1] == "1"}

    wait_until(lambda: healthy_regions() >= {"eu-west", "us-east"}, timeout=30.0)
    endpoints = prometheus.query('router_endpoint_healthy{region="eu-west"}')
    assert len(endpoints) == 2


def test_alert_rules_are_loaded_and_quiet(prometheus: PrometheusProcess) -> None:
    wait_until(lambda: bool(prometheus.query("db_pool_size")), timeout=30.0)
    firing = prometheus.query(
        'ALERTS{alertstate="firing", alertname=~"RegionDown|EndpointEjected"}'
    )
    assert firing == []
