"""The local stack with several router instances: each routes on its own, each stops by PID."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.local.stack import LocalStack, StackOptions
from deploy.local.topology import REGIONS, Ports, check_ports_free, router_name


def test_router_instances_take_base_plus_n_after_the_first() -> None:
    ports = Ports.from_base(9100, routers=3)
    assert ports.routers == (9100, 9102, 9103)
    assert [name for port, name in ports.owners() if port in ports.routers] == [
        "router",
        "router-2",
        "router-3",
    ]
    assert Ports.from_base(9100).routers == (9100,)  # `make up`: one router, as before


def test_free_ports_with_two_routers_are_distinct() -> None:
    ports = Ports.free(routers=2)
    assert len({port for port, _ in ports.owners()}) == len(ports.owners()) == 9
    check_ports_free(ports)


@pytest.mark.parametrize("routers", [0, 10])
def test_a_router_count_outside_the_layout_is_refused(routers: int) -> None:
    with pytest.raises(ValueError, match="routers must be 1 to 9"):
        Ports.from_base(9100, routers=routers)


def _probes(base: str) -> float:
    """Readiness probes one router instance has sent to the regions so far."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "router_probes_total"
    )


@pytest.fixture(scope="module")
def two_routers() -> Iterator[LocalStack]:
    """The stack without demo data, with two router instances."""
    root = Path(tempfile.mkdtemp(prefix="cinema-routers-"))
    root.chmod(0o755)  # PostgreSQL runs as an unprivileged account when tests run as root
    options = StackOptions(
        root=root / "var",
        ports=Ports.free(routers=2),
        durable=False,
        demo="none",
        extra_env={"router": {"ROUTER_PROBE_INTERVAL_SECONDS": "0.5"}},
        ready_timeout=90.0,
    )
    stack = LocalStack(options, progress=lambda _: None)
    try:
        with stack:
            yield stack
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_each_router_instance_routes_to_every_region_on_its_own(two_routers: LocalStack) -> None:
    stack = two_routers
    assert len(stack.router_urls) == 2
    pids = {stack.process(router_name(n)).pid for n in (1, 2)}
    assert None not in pids
    assert len(pids) == 2
    for base in stack.router_urls:
        assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
        for spec in REGIONS:
            routed = httpx.get(f"{base}/regions/{spec.code}/readyz", timeout=10)
            assert routed.status_code == 200
            assert routed.json()["checks"]["database"] == "ok"  # the replica's own check
        assert _probes(base) > 0  # health-checks the regions itself, no shared state


def test_stopping_one_router_by_pid_leaves_the_other_routing(two_routers: LocalStack) -> None:
    second = two_routers.process("router-2")
    second.stop()
    assert second.pid is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{two_routers.router_urls[1]}/healthz", timeout=5)
    assert httpx.get(f"{two_routers.router_url}/regions/eu-west/healthz", timeout=10).is_success
    two_routers.restart("router-2")
    assert httpx.get(f"{two_routers.router_urls[1]}/healthz", timeout=10).is_success
