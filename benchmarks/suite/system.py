"""The system under test: the whole local stack on free ports, seeded with benchmark shows."""

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from benchmarks.holds import Hall, children_of, seed_hall
from common.ids import new_id
from deploy.local.stack import LocalStack, StackOptions
from deploy.local.topology import Ports
from harness.tokens import TestIssuer as Minter

# The router's per-address hold limit would throttle a load generator that is one address;
# regions' per-customer seat cap would refuse the generator's users long before seats run out.
EXTRA_ENV = {
    # ...and its per-address connection cap: thousands of customers here share one address.
    "router": {
        "ROUTER_RATE_LIMIT_ENABLED": "false",
        "ROUTER_MAX_CONNECTIONS_PER_CLIENT": "1000000",
    },
    "regional_api": {"REGIONAL_MAX_SEATS_PER_CUSTOMER_SHOW": "100000"},
}


def start_stack(
    progress: Any = print, *, statement_stats: bool = False, routers: int = 1
) -> LocalStack:
    """Start global_api, both regions (eu-west x2, us-east x1), the router(s) and 3 PostgreSQL."""
    root = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    options = StackOptions(
        root=root,
        ports=Ports.free(routers=routers),
        durable=True,  # the regional servers' production settings, as for pgbench
        demo="none",
        log_level="WARNING",
        extra_env=EXTRA_ENV,
        statement_stats=statement_stats,
    )
    return LocalStack(options, progress=progress).start()


def minter(stack: LocalStack) -> Minter:
    """Token minting with the stack's own signing key (what a login would hand out)."""
    return Minter.from_global_db(stack.dsns["global"])


def tokens(stack: LocalStack, count: int, prefix: str) -> list[str]:
    """`count` customer tokens of distinct users."""
    mint = minter(stack)
    return [mint.token(f"usr-{prefix}-{i}", ttl=7200) for i in range(count)]


def seed(stack: LocalStack, region: str, *, rows: int, cols: int, shows: int) -> Hall:
    """A fresh hall of rows x cols seats with `shows` shows in a region's database."""
    with psycopg.connect(stack.dsns[region], autocommit=True) as conn:
        row = conn.execute("SELECT id FROM cinemas WHERE name = 'Bench'").fetchone()
        if row is None:
            cinema_id = new_id("cin", region)
            conn.execute(
                "INSERT INTO cinemas (id, name, city, timezone)"
                " VALUES (%s, 'Bench', 'Bench City', 'UTC')",
                (cinema_id,),
            )
        else:
            cinema_id = row[0]
        hall = seed_hall(conn, cinema_id, rows, cols, shows, region=region)
        conn.execute("ANALYZE show_seats")
    return hall


def leftovers(stack: LocalStack, region: str, show_id: str) -> dict[str, int]:
    """Seats of a show still free after a rush, and how many of them have a free neighbour."""
    with psycopg.connect(stack.dsns[region]) as conn:
        free = set(
            conn.execute(
                "SELECT st.grid_row, st.grid_col FROM show_seats ss JOIN seats st"
                " ON st.id = ss.seat_id WHERE ss.show_id = %s AND ss.status = 'free'",
                (show_id,),
            ).fetchall()
        )
    paired = {(row, col) for row, col in free if (row, col - 1) in free or (row, col + 1) in free}
    return {"seats_left": len(free), "seats_left_paired": len(paired)}


def router_pids(stack: LocalStack) -> dict[str, int]:
    """The PID of every router instance, by process name (`router`, `router-2`...)."""
    return {
        name: proc.pid
        for name, proc in stack.processes.items()
        if proc.app == "router" and proc.pid
    }


def open_files(pid: int | str = "self") -> int:
    """Files a process has open now (its /proc/PID/fd entries); 0 when it is gone."""
    with contextlib.suppress(OSError):
        return len(os.listdir(f"/proc/{pid}/fd"))
    return 0


class OpenFilesSampler:
    """The most files each of some processes held open, read every `every_s` in a thread."""

    def __init__(self, pids: dict[str, int], every_s: float = 0.5) -> None:
        self.pids = pids
        self.every_s = every_s
        self.most = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                self.most[name] = max(self.most[name], open_files(pid))
            if self._stop.wait(self.every_s):
                return

    def start(self) -> "OpenFilesSampler":
        """Start reading."""
        self._thread.start()
        return self

    def stop(self) -> dict[str, int]:
        """Stop reading; the most files each process held open meanwhile."""
        self._stop.set()
        self._thread.join()
        return dict(self.most)


def _status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS and RssAnon of a process in kB (empty when it is gone)."""
    found = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon"):
            found[key] = int(value.split()[0])
    return found


def postmaster_pid(stack: LocalStack, name: str) -> int | None:
    """PID of one PostgreSQL server of the stack, from its postmaster.pid."""
    pid_file = stack.paths.pg_data(name) / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def memory(stack: LocalStack) -> dict[str, dict[str, float]]:
    """Peak RSS (VmHWM, MB) of every service process and every PostgreSQL server's processes."""
    readings: dict[str, dict[str, float]] = {}
    for name, proc in stack.processes.items():
        if proc.pid is not None and (status := _status(proc.pid)):
            readings[name] = {
                "peak_mb": status["VmHWM"] / 1024,
                "anon_mb": status["RssAnon"] / 1024,
            }
    for name in stack.servers:
        pid = postmaster_pid(stack, name)
        if pid is None:
            continue
        main = _status(pid)
        readings[f"postgres {name} (postmaster)"] = {
            "peak_mb": main.get("VmHWM", 0) / 1024,
            "anon_mb": main.get("RssAnon", 0) / 1024,
        }
        kids = [status for kid in children_of(pid) if (status := _status(kid))]
        if kids:
            readings[f"postgres {name} (max of {len(kids)} children)"] = {
                "peak_mb": max(k["VmHWM"] for k in kids) / 1024,
                "anon_mb": max(k.get("RssAnon", 0) for k in kids) / 1024,
            }
    return readings


def merge_peaks(
    into: dict[str, dict[str, float]], reading: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Keep, per process, the highest figures seen over several readings."""
    for name, values in reading.items():
        key = name.split(" (max of")[0] + " (backends, max)" if "(max of" in name else name
        held = into.setdefault(key, {"peak_mb": 0.0, "anon_mb": 0.0})
        for field_name in ("peak_mb", "anon_mb"):
            held[field_name] = round(max(held[field_name], values[field_name]), 1)
    return into


ROUTER_HEALTH = (
    "router_endpoint_ejections_total",
    "router_endpoint_readmissions_total",
    "router_probes_total",
    "router_region_unavailable_total",
    "router_retries_total",
    "router_failovers_total",
)


def metric_samples(urls: Iterable[str]) -> Iterator[tuple[str, Sample]]:
    """Every sample in the `/metrics` of the processes at `urls`, with its family's name."""
    for base in urls:
        text = httpx.get(f"{base}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                yield family.name, sample


def router_health(stack: LocalStack) -> dict[str, float]:
    """The routers' endpoint-health counters (ejections, probe outcomes, 503s), by label,
    summed over the router instances."""
    found: dict[str, float] = {}
    for _, sample in metric_samples(stack.router_urls):
        if sample.name in ROUTER_HEALTH and sample.value:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            key = f"{sample.name}{{{labels}}}"
            found[key] = found.get(key, 0.0) + sample.value
    return found
