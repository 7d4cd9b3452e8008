"""The whole system as real processes: one stack for the e2e session, on free ports."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local.stack import LocalStack, StackOptions
from deploy.local.topology import Ports

# Cheap password hashing and fast health probes: the e2e suite must stay short.
FAST_ENV = {
    "global_api": {
        "GLOBAL_ARGON2_TIME_COST": "1",
        "GLOBAL_ARGON2_MEMORY_COST": "1024",
        "GLOBAL_ARGON2_PARALLELISM": "1",
    },
    "router": {"ROUTER_PROBE_INTERVAL_SECONDS": "0.5", "ROUTER_MAP_REFRESH_SECONDS": "2"},
    "regional_api": {},
}


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """Every process of the system with the small demo, in a temporary directory."""
    root = Path(tempfile.mkdtemp(prefix="cinema-e2e-"))
    root.chmod(0o755)  # PostgreSQL runs as an unprivileged account when tests run as root
    options = StackOptions(
        root=root / "var",
        ports=Ports.free(),
        durable=False,
        demo="small",
        extra_env=FAST_ENV,
        ready_timeout=90.0,
    )
    lines: list[str] = []
    running = LocalStack(options, progress=lines.append)
    try:
        running.start()
    except BaseException:
        print("\n".join(lines))
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def router(stack: LocalStack) -> Iterator[httpx.Client]:
    """An HTTP client for the public entry point."""
    with httpx.Client(base_url=stack.router_url, timeout=10.0) as client:
        yield client


def login(client: httpx.Client, who: dict[str, str]) -> dict[str, str]:
    """Log in through `client`; return an Authorization header."""
    response = client.post("/auth/login", json={"email": who["email"], "password": who["password"]})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
