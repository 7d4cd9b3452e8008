"""Kubernetes tree: connection budget, cross-cluster endpoints and the edge in front of the router."""

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from global_api.config import GlobalSettings
from regional_api.config import RegionalSettings
from router.config import RouterSettings
from tests.deploy.k8s_support import (
    CLUSTERS,
    K8S,
    REGIONS,
    env_of,
    hpa_target,
    named,
    needs_kubectl,
    of_kind,
    pod_specs,
    render,
)

# PostgreSQL's superuser_reserved_connections (CloudNativePG keeps the default).
RESERVED = 3


def _setting(env: dict[str, str], prefix: str, cls: Any, field: str) -> int:
    return int(env.get(prefix + field.upper(), cls.model_fields[field].default))


def _per_pod(env: dict[str, str], role: str) -> int:
    """Connections one API pod may open, from its settings (defaults, then its environment)."""
    if role == "regional":
        # One pool (common/db.py make_pool, sessions included) + the readiness probe's own
        # connection (common/probe.py ProbeConnection)
        return _setting(env, "REGIONAL_", RegionalSettings, "db_pool_size") + 1
    return sum(
        _setting(env, "GLOBAL_", GlobalSettings, f) for f in ("db_pool_size", "db_max_overflow")
    )


def _budget(cluster: str) -> tuple[int, int]:
    """(worst-case server connections, max_connections) of the cluster's database."""
    objects = render(cluster)
    (database,) = of_kind(objects, "Cluster")
    limit = int(database["spec"]["postgresql"]["parameters"]["max_connections"])
    (api,) = [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"] != "router"]
    role = api["metadata"]["name"].split("-")[0]
    hpa = hpa_target(objects, api)
    assert hpa is not None
    pods = hpa["spec"]["maxReplicas"] + api["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    env = env_of(objects, container)
    host = urlsplit(env[f"{role.upper()}_DATABASE_URL"].replace("$(", "").replace(")", "")).hostname
    migrations = pods  # one init container per pod, straight to the primary, for a moment
    poolers = [p for p in of_kind(objects, "Pooler") if f"{p['metadata']['name']}" == host]
    if not poolers:
        return pods * _per_pod(env, role) + migrations + RESERVED, limit
    (pooler,) = poolers
    parameters = pooler["spec"]["pgbouncer"]["parameters"]
    clients = pods * _per_pod(env, role)
    assert int(parameters["max_client_conn"]) >= clients, "one pooler may get every client"
    per_instance = int(parameters["default_pool_size"]) + int(parameters["reserve_pool_size"])
    return pooler["spec"]["instances"] * per_instance + migrations + RESERVED, limit


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_connections_at_the_hpa_maximum_fit_max_connections(cluster: str) -> None:
    worst, limit = _budget(cluster)
    assert worst <= limit, f"{cluster}: {worst} connections against max_connections {limit}"


def _global_host() -> str:
    (ingress,) = of_kind(render("global"), "Ingress")
    host: str = ingress["spec"]["rules"][0]["host"]
    assert host in ingress["spec"]["tls"][0]["hosts"]
    return host


def _regional_host(region: str) -> str:
    ingress = named(render(f"overlays/{region}"), "Ingress", "regional-api")
    host: str = ingress["spec"]["rules"][0]["host"]
    assert host in ingress["spec"]["tls"][0]["hosts"]
    return host


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@needs_kubectl
@pytest.mark.parametrize("region", REGIONS)
def test_other_clusters_are_reached_at_their_public_endpoints(region: str) -> None:
    objects = render(f"overlays/{region}")
    for text in _strings([*of_kind(objects, "ConfigMap"), *of_kind(objects, "Deployment")]):
        assert ".svc.cluster.local" not in text, text
    global_url = f"https://{_global_host()}"
    router = named(objects, "Deployment", "router")["spec"]["template"]["spec"]["containers"][0]
    api = named(objects, "Deployment", "regional-api")["spec"]["template"]["spec"]
    register = of_kind(objects, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]
    assert env_of(objects, router)["ROUTER_GLOBAL_API_URL"] == global_url
    assert env_of(objects, api["containers"][0])["REGIONAL_GLOBAL_API_URL"] == global_url
    assert env_of(objects, register["spec"]["containers"][0])["CINEMA_GLOBAL_URL"] == global_url
    fallback = json.loads(
        named(objects, "ConfigMap", "cinema-directory-fallback")["data"]["directory.json"]
    )
    endpoints = {r["code"]: r["endpoints"] for r in fallback["regions"]}
    assert endpoints == {code: [f"https://{_regional_host(code)}"] for code in REGIONS}
    entry = json.loads(named(objects, "ConfigMap", "cinema-region-entry")["data"]["region.json"])
    assert entry["regions"][0]["endpoints"] == endpoints[region]


@needs_kubectl
@pytest.mark.parametrize("region", REGIONS)
def test_the_router_cap_is_sized_per_pod_of_each_region(
    region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render(f"overlays/{region}")
    env = env_of(
        objects, named(objects, "Deployment", "router")["spec"]["template"]["spec"]["containers"][0]
    )
    for name in ("ROUTER_ENDPOINT_PODS", "ROUTER_ENDPOINT_PODS_DNS"):
        monkeypatch.setenv(name, env[name])
    settings = RouterSettings()  # read from the environment, as the router pod does
    for code in REGIONS:
        remote = render(f"overlays/{code}")
        hpa = hpa_target(remote, named(remote, "Deployment", "regional-api"))
        assert hpa is not None
        url = f"https://{_regional_host(code)}"
        assert settings.endpoint_pods[url] == hpa["spec"]["maxReplicas"], url
    own = f"https://{_regional_host(region)}"
    (dns,) = settings.endpoint_pods_dns.items()
    assert dns[0] == own
    headless = named(objects, "Service", dns[1])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == {"app.kubernetes.io/name": "regional-api"}


@needs_kubectl
@pytest.mark.parametrize("region", REGIONS)
def test_only_the_ingress_exposes_the_router_with_edge_limits(region: str) -> None:
    objects = render(f"overlays/{region}")
    assert all(
        s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in of_kind(objects, "Service")
    )
    router = named(objects, "Ingress", "router")
    backends = {
        p["backend"]["service"]["name"] for r in router["spec"]["rules"] for p in r["http"]["paths"]
    }
    assert backends == {"router"}
    notes = router["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    defaults = RouterSettings()
    assert notes[prefix + "proxy-body-size"] == f"{defaults.max_body_bytes // 1_048_576}m"
    # nginx never cuts an answer the router is still allowed to wait for.
    assert int(notes[prefix + "proxy-read-timeout"]) > defaults.request_deadline_seconds
    assert int(notes[prefix + "limit-connections"]) > 0
    assert notes[prefix + "proxy-request-buffering"] == notes[prefix + "proxy-buffering"] == "on"


def test_the_ingress_controller_keeps_client_addresses_and_bounds_headers() -> None:
    values = yaml.safe_load((K8S / "ingress-nginx-values.yaml").read_text())["controller"]
    assert values["service"]["externalTrafficPolicy"] == "Local"
    config = values["config"]
    assert int(config["client-header-timeout"]) <= 10
    assert int(config["client-body-timeout"]) <= 10
    count, size = config["large-client-header-buffers"].split()
    # No more header bytes than the router takes itself (ROUTER_MAX_HEADER_BYTES, 32 KiB).
    assert int(count) * int(size.removesuffix("k")) <= 32
    assert config["use-forwarded-headers"] == "false"  # a client's own X-Forwarded-For is dropped


@needs_kubectl
def test_every_workload_pod_is_scraped_with_the_labels_the_rules_read() -> None:
    for cluster in CLUSTERS:
        objects = render(cluster)
        monitors = of_kind(objects, "PodMonitor")
        for workload, template in pod_specs(objects):
            if workload["kind"] == "CronJob":
                continue
            labels = template["metadata"]["labels"]
            assert any(
                m["spec"]["selector"]["matchLabels"].items() <= labels.items() for m in monitors
            ), workload["metadata"]["name"]
