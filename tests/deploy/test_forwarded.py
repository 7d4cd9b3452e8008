"""Every uvicorn this repository starts says whose X-Forwarded-For it believes; `--tls` wiring.

uvicorn's implicit default believes 127.0.0.1, which let a client of the local stack reset the
router's per-address limits with a header of its own (issue 15). The router believes nobody's
(it derives the client itself, `ROUTER_TRUSTED_PROXIES`); the services believe the router's.
"""

from pathlib import Path

import yaml

from deploy.local.processes import APPS, FORWARDED_ALLOW_IPS, ServiceProcess
from deploy.local.stack import LocalStack, StackOptions
from harness.tls import make_throwaway_ca

ROOT = Path(__file__).resolve().parents[2]


def _allowed(command: list[str]) -> str:
    assert "--proxy-headers" not in command, command
    assert "--forwarded-allow-ips" in command, command
    return command[command.index("--forwarded-allow-ips") + 1]


def test_compose_commands_believe_only_the_router() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.regions.yml").read_text())
    services = compose["services"]
    router_ip = services["router"]["networks"]["default"]["ipv4_address"]
    served = {
        name: s["command"] for name, s in services.items() if "uvicorn" in s.get("command", [])
    }
    assert len(served) == 5, served
    for name, command in served.items():
        assert _allowed(command) == ("" if name == "router" else router_ip), name


def test_dockerfile_router_believes_nobody() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'FORWARDED_ALLOW_IPS=""' in dockerfile  # the default of any command in the image
    cmd = dockerfile.split("CMD [", 1)[1].split("]", 1)[0]
    command = [part.strip().strip('"') for part in cmd.replace("\\\n", "").split(",")]
    assert _allowed(command) == ""


def test_local_stack_processes_set_it(tmp_path: Path) -> None:
    assert FORWARDED_ALLOW_IPS == {
        "global_api": "127.0.0.1",
        "regional_api": "127.0.0.1",
        "router": "",
    }
    for app in APPS:
        process = ServiceProcess(app, app, port=1, log_path=tmp_path / "log")
        assert _allowed(process.command()) == FORWARDED_ALLOW_IPS[app]


def test_tls_stack_serves_the_replicas_over_mutual_tls(tmp_path: Path) -> None:
    files = make_throwaway_ca(tmp_path / "tls")
    replica = ServiceProcess("eu-west-1", "regional_api", port=1, tls=files)
    command = replica.command()
    assert command[command.index("--ssl-cert-reqs") + 1] == "2"  # ssl.CERT_REQUIRED
    assert command[command.index("--ssl-ca-certs") + 1] == str(files.ca)
    assert replica.url == "https://127.0.0.1:1"
    stack = LocalStack(StackOptions(root=tmp_path / "var", tls=True), progress=lambda _: None)
    assert all(url.startswith("https://") for url in stack.regional_urls("eu-west"))
    assert set(files.router_env()) == {
        "ROUTER_UPSTREAM_CA_FILE",
        "ROUTER_UPSTREAM_CERT_FILE",
        "ROUTER_UPSTREAM_KEY_FILE",
    }
