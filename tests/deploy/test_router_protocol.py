"""Every way of starting the router serves it with its own protocol (the proxy fast path)."""

from pathlib import Path

import pytest
import yaml
from uvicorn.config import Config

from deploy.local.processes import HTTP_PROTOCOLS
from router.proxy.protocol import SPEC, RouterProtocol

ROOT = Path(__file__).resolve().parents[2]


def _router_commands() -> dict[str, list[str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.regions.yml").read_text())
    (k8s,) = [
        doc
        for doc in yaml.safe_load_all((ROOT / "deploy/k8s/base/router.yaml").read_text())
        if doc and doc.get("kind") == "Deployment"
    ]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    cmd = dockerfile.split("CMD [", 1)[1].split("]", 1)[0]
    return {
        "compose": compose["services"]["router"]["command"],
        "k8s": k8s["spec"]["template"]["spec"]["containers"][0]["args"],
        "Dockerfile": [part.strip().strip('"') for part in cmd.replace("\\\n", "").split(",")],
    }


@pytest.mark.parametrize("where", ["compose", "k8s", "Dockerfile"])
def test_deployments_serve_the_router_with_its_protocol(where: str) -> None:
    command = _router_commands()[where]
    assert "router.main:create_app" in command
    assert command[command.index("--http") + 1] == SPEC


def test_local_stack_serves_the_router_with_its_protocol() -> None:
    assert HTTP_PROTOCOLS["router"] == SPEC


def test_the_spec_names_the_protocol_uvicorn_loads() -> None:
    config = Config("router.main:create_app", factory=True, http=SPEC)
    config.load()
    assert config.http_protocol_class is RouterProtocol
