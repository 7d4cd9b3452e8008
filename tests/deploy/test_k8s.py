"""Kubernetes tree: every directory renders, validates, and holds the operator's invariants.

Rendered with kubectl's built-in kustomize, validated against the Kubernetes 1.30 and 1.37
schemas (kubernetes-validate); the invariants are checked on the rendered objects, so a patch
or a generator in an overlay cannot slip past them. Connection budget and Ingress/trust checks
are in test_k8s_budget.py.
"""

import ipaddress
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.k8s_support import (
    CLUSTERS,
    DIRECTORIES,
    K8S,
    REGIONS,
    containers,
    env_of,
    hpa_target,
    named,
    needs_kubectl,
    of_kind,
    pod_specs,
    render,
)
from tests.deploy.settings import unknown_settings

# Kinds whose schema is a CRD: CloudNativePG, its Barman Cloud plugin, the Prometheus Operator.
CRD_GROUPS = ("postgresql.cnpg.io/", "barmancloud.cnpg.io/", "monitoring.coreos.com/")
# The router's trusted-proxy setting, which another branch adds to RouterSettings (issue 15).
ZONE = "topology.kubernetes.io/zone"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_every_yaml_file_parses() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        docs = yaml.safe_load_all(path.read_text())
        assert all(isinstance(d, (dict, list)) for d in docs if d is not None), path


@needs_kubectl
@pytest.mark.parametrize("version", ["1.30", "1.37"])
@pytest.mark.parametrize("directory", DIRECTORIES, ids=lambda p: str(p.relative_to(K8S)))
def test_every_directory_renders_and_matches_the_schemas(directory: Path, version: str) -> None:
    objects = render(str(directory.relative_to(K8S)))
    assert objects
    for obj in objects:
        if obj["apiVersion"].startswith(CRD_GROUPS):
            continue
        kubernetes_validate.validate(obj, version, strict=True)


CNPG_CRDS = Path(__file__).parent / "crds" / "cnpg-v1.30.0"  # vendored: see its SOURCE.md


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields refused wherever the CRD lists an object's fields."""
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
    for key in ("properties", "patternProperties"):
        for sub in schema.get(key, {}).values():
            _strict(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _strict(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            _strict(sub)
    return schema


@cache
def _cnpg_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The CRDs' schemas by kind and version (1 MB of YAML: read once, by libyaml)."""
    schemas = {}
    folder = Path(os.environ.get("CNPG_CRD_DIR", CNPG_CRDS))
    for path in folder.glob("postgresql.cnpg.io_*.yaml"):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            schemas[crd["spec"]["names"]["kind"], version["name"]] = schema
    return schemas


@cache
def _cnpg_validator(kind: str, version: str) -> Any:
    """A strict validator of one CRD, its schema checked once (2-3 s; it was once per object)."""
    import jsonschema

    schema = _cnpg_schemas()[kind, version]
    schema["properties"]["metadata"] = {"type": "object"}
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(_strict(schema))
    return validator(schema)


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_cloudnativepg_objects_match_the_crd(cluster: str) -> None:
    checked = 0
    for obj in render(cluster):
        if obj["apiVersion"].startswith("postgresql.cnpg.io/"):
            _cnpg_validator(obj["kind"], obj["apiVersion"].split("/")[1]).validate(obj)
            checked += 1
    assert checked, cluster


def test_one_overlay_per_region() -> None:
    assert REGIONS == ["eu-west", "us-east"]
    for region in REGIONS:
        spec = _documents(K8S / "overlays" / region / "kustomization.yaml")[0]
        assert spec["namespace"] == f"cinema-{region}"
        assert "../../base" in spec["resources"]
        literals = spec["configMapGenerator"][0]["literals"]
        assert f"REGIONAL_REGION={region}" in literals


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_no_replicas_on_a_deployment_an_hpa_scales(cluster: str) -> None:
    objects = render(cluster)
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        assert hpa_target(objects, deployment) is not None, name
        assert "replicas" not in deployment["spec"], f"{name}: an apply would fight the HPA"


def _restricted(workload: str, template: dict[str, Any]) -> None:
    """The restricted Pod Security Standard, plus a read-only root filesystem."""
    pod = template["spec"].get("securityContext", {})
    assert pod.get("runAsNonRoot") is True, workload
    assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", workload
    assert template["spec"].get("automountServiceAccountToken") is False, workload
    for container in containers(template):
        context = container.get("securityContext", {})
        assert context.get("allowPrivilegeEscalation") is False, (workload, container["name"])
        assert context.get("capabilities", {}).get("drop") == ["ALL"], container["name"]
        assert context.get("readOnlyRootFilesystem") is True, (workload, container["name"])
        resources = container.get("resources", {})
        assert {"requests", "limits"} <= set(resources), (workload, container["name"])


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_pod_is_restricted_with_resources(cluster: str) -> None:
    objects = render(cluster)
    namespaces = of_kind(objects, "Namespace")
    assert namespaces
    for namespace in namespaces:
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload, template in pod_specs(objects):
        _restricted(workload["metadata"]["name"], template)


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_deployment_has_probes_drain_and_zone_spread(cluster: str) -> None:
    objects = render(cluster)
    deployments = of_kind(objects, "Deployment")
    assert deployments
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        template = deployment["spec"]["template"]
        container = template["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert "startupProbe" in container, name
        assert "preStop" in container.get("lifecycle", {}), name
        grace = template["spec"]["terminationGracePeriodSeconds"]
        assert grace > container["lifecycle"]["preStop"]["sleep"]["seconds"] + 20, name
        spread = {c["topologyKey"]: c for c in template["spec"]["topologySpreadConstraints"]}
        zone = spread[ZONE]
        labels = template["metadata"]["labels"]
        assert zone["labelSelector"]["matchLabels"].items() <= labels.items(), name
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"):
            assert named(objects, kind, name), (kind, name)


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_databases_span_zones_with_a_sync_standby_and_backups(cluster: str) -> None:
    objects = render(cluster)
    (database,) = of_kind(objects, "Cluster")
    spec = database["spec"]
    assert spec["instances"] >= 3
    assert spec["affinity"] == {"topologyKey": ZONE, "podAntiAffinityType": "required"}
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == ZONE
    assert not {"minSyncReplicas", "maxSyncReplicas"} & set(spec), "deprecated in CNPG"
    assert spec["postgresql"]["synchronous"]["number"] >= 1
    (archiver,) = [p for p in spec["plugins"] if p.get("isWALArchiver")]
    store = named(objects, "ObjectStore", archiver["parameters"]["barmanObjectName"])
    path = store["spec"]["configuration"]["destinationPath"]
    assert path.endswith("/" + cluster.rsplit("/", 1)[-1]), path
    (backup,) = of_kind(objects, "ScheduledBackup")
    assert backup["spec"]["cluster"]["name"] == database["metadata"]["name"]


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_images_are_pinned_by_digest(cluster: str) -> None:
    objects = render(cluster)
    for _, template in pod_specs(objects):
        for container in containers(template):
            assert "@sha256:" in container["image"], container["image"]
    # The database's too, at the PostgreSQL major the compose file runs.
    (database,) = of_kind(objects, "Cluster")
    image = database["spec"]["imageName"]
    assert "@sha256:" in image, image
    compose = yaml.safe_load((K8S.parent.parent / "docker-compose.regions.yml").read_text())
    majors = {s["image"] for s in compose["services"].values() if "postgres:" in s.get("image", "")}
    assert majors == {"postgres:16-alpine"}
    assert image.split(":")[1].startswith("16."), image


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_migrations_run_in_init_containers_not_fixed_jobs(cluster: str) -> None:
    objects = render(cluster)
    assert of_kind(objects, "Job") == []  # a fixed-name Job cannot take a new image
    for deployment in of_kind(objects, "Deployment"):
        if deployment["metadata"]["name"] == "router":
            continue
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        role = deployment["metadata"]["name"].split("-")[0]
        assert init["args"][:2] == ["deploy.migrate", role]
        dsn = env_of(objects, init)[f"{role.upper()}_DATABASE_URL"]
        assert "pooler" not in dsn, "the migration's session lock needs a direct connection"


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_network_policies_cover_every_namespace(cluster: str) -> None:
    objects = render(cluster)
    policies = of_kind(objects, "NetworkPolicy")
    for namespace in of_kind(objects, "Namespace"):
        mine = [p for p in policies if p["metadata"]["namespace"] == namespace["metadata"]["name"]]
        assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in mine), (
            f"{namespace['metadata']['name']}: no default deny"
        )
    for workload, template in pod_specs(objects):
        if workload["kind"] == "CronJob":
            continue  # takes no connections
        labels = template["metadata"]["labels"]
        assert any(
            p["spec"]["podSelector"].get("matchLabels", {"-": "-"}).items() <= labels.items()
            and p["spec"].get("ingress")
            for p in policies
        ), workload["metadata"]["name"]
    database = named(objects, "NetworkPolicy", "database")
    sources = [source for rule in database["spec"]["ingress"] for source in rule["from"]]
    assert not any(
        s.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "ingress-nginx"
        for s in sources
    ), "the database is reachable only from its region's API"


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_env_names_are_settings_and_database_passwords_come_from_secrets(cluster: str) -> None:
    objects = render(cluster)
    for _, template in pod_specs(objects):
        for container in containers(template):
            env = env_of(objects, container)
            assert not unknown_settings(env), container["name"]
            for entry in container.get("env", []):
                if entry["name"] in {"DB_PASSWORD", "CINEMA_ADMIN_PASSWORD"} or entry[
                    "name"
                ].endswith("ADMIN_PASSWORD"):
                    assert "secretKeyRef" in entry["valueFrom"], entry["name"]
            for name, value in env.items():
                if name.endswith("DATABASE_URL"):
                    assert "sslmode=verify-full" in value, name
                    assert "$(DB_PASSWORD)" in value, name


def _networks(value: str) -> list[str]:
    networks = [part.strip() for part in value.split(",")]
    assert all(ipaddress.ip_network(n) for n in networks), value  # "*" or "changeme" fail
    return networks


@needs_kubectl
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_uvicorn_trusts_only_configured_proxies(cluster: str) -> None:
    objects = render(cluster)
    started = 0
    for _, template in pod_specs(objects):
        for container in template["spec"]["containers"]:
            args = container.get("args", [])
            if not args or args[0] != "uvicorn":
                continue
            started += 1
            env = env_of(objects, container)
            allowed = args[args.index("--forwarded-allow-ips") + 1]
            if container["name"] == "router":
                # uvicorn believes nobody; the router walks X-Forwarded-For itself.
                assert allowed == ""
                _networks(env["ROUTER_TRUSTED_PROXIES"])
            else:
                assert allowed == "$(FORWARDED_ALLOW_IPS)", container["name"]
                _networks(env["FORWARDED_ALLOW_IPS"])
    assert started >= 1


@needs_kubectl
@pytest.mark.parametrize("region", REGIONS)
def test_a_registration_job_registers_the_region(region: str) -> None:
    objects = render(f"overlays/{region}")
    (cron,) = of_kind(objects, "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"][0] == "deploy.regions"
    (volume,) = [v for v in pod["spec"]["volumes"] if "configMap" in v]
    entry = named(objects, "ConfigMap", volume["configMap"]["name"])
    (registered,) = json.loads(entry["data"]["region.json"])["regions"]
    assert registered["code"] == region
    env = {e["name"]: e for e in container["env"]}
    assert env["CINEMA_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "cinema-bootstrap-admin"
    )
