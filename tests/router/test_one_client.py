"""The router process talks to its upstreams with one HTTP client: router.upstreams.http1."""

import subprocess
import sys
from pathlib import Path

import httpx

from harness.procs import metric
from tests.support.poll import wait_until

ROOT = Path(__file__).resolve().parents[2]

# Imports the router's server and app the way `uvicorn --factory` does, then lists the clients.
PROBE = """
import sys
import router.main, router.proxy.protocol
print(",".join(sorted(name for name in ("aiohttp", "httpx") if name in sys.modules)))
"""


def test_the_router_process_loads_no_other_http_client() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"the router process imports {loaded}"


def test_the_router_fetches_the_jwks_with_its_own_client(router_url: str) -> None:
    with httpx.Client(base_url=router_url, timeout=5.0) as client:
        wait_until(lambda: metric(client, "auth_jwks_fetches_total", outcome="ok") > 0)
        assert metric(client, "auth_jwks_fetches_total", outcome="failed") == 0
