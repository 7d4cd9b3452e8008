"""Kubernetes manifests: they parse, kustomizations reference files that exist, probes are set."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.settings import unknown_settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _referenced(kustomization: Path) -> list[Path]:
    spec = _documents(kustomization)[0]
    paths = [kustomization.parent / entry for entry in spec.get("resources", [])]
    paths += [kustomization.parent / p["path"] for p in spec.get("patches", []) if "path" in p]
    for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
        paths += [kustomization.parent / f.split("=")[-1] for f in generator.get("files", [])]
    return paths


def test_every_yaml_file_parses() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        docs = yaml.safe_load_all(path.read_text())
        assert all(isinstance(d, (dict, list)) for d in docs if d is not None), path


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: str(p.parent.name))
def test_kustomization_references_existing_files(kustomization: Path) -> None:
    for path in _referenced(kustomization):
        assert path.exists(), f"{kustomization} -> {path}"
        if path.is_dir():
            assert (path / "kustomization.yaml").exists(), path


def test_one_overlay_per_region_sets_region_and_database_secret() -> None:
    overlays = {p.name: p for p in (K8S / "overlays").iterdir()}
    assert set(overlays) == {"eu-west", "us-east"}
    for region, folder in overlays.items():
        spec = _documents(folder / "kustomization.yaml")[0]
        assert spec["namespace"] == f"cinema-{region}"
        assert "../../base" in spec["resources"]
        literals = spec["configMapGenerator"][0]["literals"]
        assert f"REGIONAL_REGION={region}" in literals
        patch = yaml.safe_load((folder / "db-secret.yaml").read_text())
        assert patch[0]["value"] == f"cinema-{region}-db-app"


def _workloads() -> list[dict[str, Any]]:
    docs = [d for p in K8S.rglob("*.yaml") for d in _documents(p) if isinstance(d, dict)]
    return [d for d in docs if d.get("kind") in {"Deployment", "Job"}]


def test_deployments_have_probes_resources_hpa_and_pdb() -> None:
    docs = [d for p in K8S.rglob("*.yaml") for d in _documents(p) if isinstance(d, dict)]
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"global-api", "regional-api", "router"}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"requests", "limits"} <= set(container["resources"])
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"):
            assert any(d["kind"] == kind and d["metadata"]["name"] == name for d in docs), (
                kind,
                name,
            )


def test_database_urls_come_from_secrets_and_env_names_are_settings() -> None:
    for workload in _workloads():
        container = workload["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        assert unknown_settings(list(env)) == []
        for name, entry in env.items():
            if name.endswith("DATABASE_URL"):
                assert "secretKeyRef" in entry["valueFrom"], workload["metadata"]["name"]
    for path in K8S.rglob("kustomization.yaml"):
        for generator in _documents(path)[0].get("configMapGenerator", []):
            assert unknown_settings(generator.get("literals", [])) == [], path
