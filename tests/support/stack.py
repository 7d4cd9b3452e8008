"""The whole system as real processes on free ports, for the e2e, browser and reliability suites."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.local.stack import LocalStack, StackOptions
from deploy.local.topology import Ports

# Cheap password hashing and fast health probes: the suites must stay short. Every simulated
# customer comes from 127.0.0.1, so the router's per-address hold limit is raised to what a
# crowd behind one address would get.
FAST_ENV = {
    "global_api": {
        "GLOBAL_ARGON2_TIME_COST": "1",
        "GLOBAL_ARGON2_MEMORY_COST": "1024",
        "GLOBAL_ARGON2_PARALLELISM": "1",
    },
    "router": {
        "ROUTER_PROBE_INTERVAL_SECONDS": "0.5",
        "ROUTER_MAP_REFRESH_SECONDS": "2",
        "ROUTER_HOLD_RATE_PER_SECOND": "1000",
        "ROUTER_HOLD_BURST": "1000",
    },
    "regional_api": {},
}


@contextmanager
def running_stack(prefix: str, *, log_level: str = "INFO") -> Iterator[LocalStack]:
    """Start every process with the small demo in a temporary directory; stop and clean up after."""
    root = Path(tempfile.mkdtemp(prefix=f"cinema-{prefix}-"))
    root.chmod(0o755)  # PostgreSQL runs as an unprivileged account when tests run as root
    options = StackOptions(
        root=root / "var",
        ports=Ports.free(),
        durable=False,
        demo="small",
        extra_env=FAST_ENV,
        ready_timeout=90.0,
        log_level=log_level,
    )
    lines: list[str] = []
    stack = LocalStack(options, progress=lines.append)
    try:
        stack.start()
    except BaseException:
        print("\n".join(lines))
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root / "var" / "pg", ignore_errors=True)  # logs stay for post-mortems
