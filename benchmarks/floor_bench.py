"""The floor benchmark: regional_api against `benchmarks/floor.py`, same PostgreSQL, same run.

Run: `.venv/bin/python -m benchmarks.floor_bench [--seconds 3] [--clients 64] [--write]`;
`make bench` runs it too (`run`, report section `benchmarks.floor_report.section`). Starts one
durable PostgreSQL (with pg_stat_statements and connection logging), one regional_api worker as
deployed (log level INFO) and the floor, each also behind a router of its own (static map).
Then, per operation (hold 1 seat, hold 2 seats, hold+pay, GET /shows/{id}, seat map) and path
(direct, routed), loads regional_api and the floor one after the other from the holds load
generator (`benchmarks.holds.run_load`, a separate process) and charges each process's CPU to
the operations. `--write` rewrites docs/benchmarks/floor.md's figures.
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.floor_report import OPS, is_backend, per_op, section
from benchmarks.holds import Hall, Load, children_of, run_load, seed_hall, start_api
from benchmarks.suite import profile
from benchmarks.suite.loads import summarise
from common.ids import new_id
from common.migrate import upgrade
from common.pg import create_database, start_server
from deploy.local.processes import ServiceProcess
from tests.router.support import Proc, directory_map, router
from tests.support.ports import dead_url
from tests.support.tokens import TestIssuer

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "floor.md"
REGION = "eu-west"
SCENARIO = dict(zip(OPS, ("hold1", "spread", "hold_pay", "show", "seats"), strict=True))
HOLDS = frozenset({"hold 1 seat", "hold 2 seats", "hold+pay"})
STATEMENTS = """
SELECT query, calls FROM pg_stat_statements
WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = %s)
  AND query NOT LIKE '%%pg_stat_statements%%'
"""


@dataclass
class Target:
    """One app on one path: its base URL and the processes whose CPU it is charged."""

    app: str
    path: str
    url: str
    app_pid: int
    router_pid: int | None = None


@dataclass
class Rig:
    """The running system: PostgreSQL, both apps, both routers."""

    dsn: str
    dbname: str
    master: int | None
    log: Path | None
    cinema_id: str
    reads: Hall
    tokens: list[str]
    targets: list[Target]


def _times(pid: int) -> tuple[float, float]:
    """(own CPU, reaped children's CPU) seconds of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _title(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def pg_cpu(master: int | None) -> dict[str, float]:
    """CPU seconds so far of a server's client backends and of its background processes."""
    if master is None:
        return {}
    own, reaped = _times(master)
    used = {"pg_backends": reaped, "pg_background": own}  # exited backends land in `reaped`
    for pid in children_of(master):
        with contextlib.suppress(OSError, IndexError):
            kind = "pg_backends" if is_backend(_title(pid)) else "pg_background"
            used[kind] += _times(pid)[0]
    return used


def cpu(target: Target, master: int | None) -> dict[str, float]:
    """CPU seconds so far of every process a target's requests run in."""
    used = {"app": _times(target.app_pid)[0]} | pg_cpu(master)
    if target.router_pid is not None:
        used["router"] = _times(target.router_pid)[0]
    return used


def _log_size(log: Path | None) -> int:
    return log.stat().st_size if log is not None and log.exists() else 0


def new_connections(log: Path | None, since: int) -> int:
    """Connections PostgreSQL authorized since a log offset (log_connections is on)."""
    if log is None:
        return -1
    with log.open("rb") as handle:
        handle.seek(since)
        return handle.read().count(b"connection authorized")


def statement_calls(conn: psycopg.Connection[Any], dbname: str) -> list[tuple[str, int]]:
    """Top-level statements of the benchmark database since the last reset, with their calls."""
    return [(str(q), int(c)) for q, c in conn.execute(STATEMENTS, (dbname,)).fetchall()]


def measure(
    pool: Executor, rig: Rig, admin: psycopg.Connection[Any], target: Target, load: Load
) -> dict[str, Any]:
    """One load run on one target, with CPU, new connections and statements per operation."""
    admin.execute("SELECT pg_stat_statements_reset()")
    offset, before = _log_size(rig.log), cpu(target, rig.master)
    outcome = pool.submit(run_load, load).result()
    after = cpu(target, rig.master)
    ops = max(1, outcome.ok + outcome.conflicts + outcome.errors)
    spent = {part: round(1000 * (after[part] - before[part]) / ops, 3) for part in after}
    return summarise(outcome) | {
        "app": target.app,
        "path": target.path,
        "cpu_ms_per_op": spent,
        "new_connections": new_connections(rig.log, offset),
        "statements": per_op(statement_calls(admin, rig.dbname), ops),
    }


def _hall(rig: Rig, op: str) -> Hall:
    if op not in HOLDS:
        return rig.reads
    with psycopg.connect(rig.dsn, autocommit=True) as conn:
        return seed_hall(conn, rig.cinema_id, 20, 30, 20, region=REGION)


def run_all(
    pool: Executor, rig: Rig, seconds: float, clients: int, progress: Any = print
) -> list[dict[str, Any]]:
    """Warm every target up, then each operation x path, regional_api and floor back to back."""
    hall = _hall(rig, "hold+pay")
    for target in rig.targets:  # connections, prepared statements, the token caches
        for scenario, seconds_ in (("hold_pay", 1.0), ("seats", 0.5)):
            load = Load(scenario, target.url, seconds_, 16, rig.tokens, hall)
            pool.submit(run_load, load).result()
    progress(f"  floor: warmed up at {time.strftime('%H:%M:%S')}")
    rows = []
    with psycopg.connect(rig.dsn, autocommit=True) as admin:
        for op in OPS:
            for target in rig.targets:
                load = Load(SCENARIO[op], target.url, seconds, clients, rig.tokens, _hall(rig, op))
                row = {"op": op} | measure(pool, rig, admin, target, load)
                rows.append(row)
                progress(
                    f"  {time.strftime('%H:%M:%S')} {op:16} {target.path:6} {target.app:12} {row['ok_per_s']:7.0f}/s"
                    f"  app {row['cpu_ms_per_op']['app']:.2f} ms/op"
                    f"  PG {row['cpu_ms_per_op']['pg_backends']:.2f} ms/op"
                    f"  new conns {row['new_connections']}"
                )
    return rows


def profile_holds(pool: Executor, rig: Rig, seconds: float, clients: int, out: Path) -> None:
    """py-spy on regional_api during two-seat holds: a flame graph, then collapsed stacks."""
    target = rig.targets[0]
    for fmt, name in (("flamegraph", "regional_api-holds.svg"), ("raw", "regional_api-holds.txt")):
        spy = profile.start(target.app_pid, seconds, out / name, fmt)
        load = Load("spread", target.url, seconds, clients, rig.tokens, _hall(rig, "hold 2 seats"))
        pool.submit(run_load, load).result()
        if spy is not None:
            spy.wait(timeout=60)


def _seed(dsn: str) -> tuple[str, Hall]:
    """A cinema, and 50 shows of 600 seats for the reads; statistics for the catalog."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cinema_id = new_id("cin", REGION)
        conn.execute(
            "INSERT INTO cinemas (id, name, city, timezone) VALUES (%s, 'Floor', 'Paris', 'UTC')",
            (cinema_id,),
        )
        reads = seed_hall(conn, cinema_id, 20, 30, 50, region=REGION)
        conn.execute("ANALYZE cinemas, halls, seats, movies, shows, show_prices, show_seats")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("ALTER SYSTEM SET log_connections = on")
        conn.execute("SELECT pg_reload_conf()")
    return cinema_id, reads


def _routed(app_url: str, workdir: Path, name: str, global_url: str) -> Proc:
    """A router whose static map sends the region to one app."""
    static = workdir / f"{name}-map.json"
    static.write_text(json.dumps(directory_map(name, {REGION: [app_url]}, {})))
    proxy = router(
        global_url,
        static_config_file=static,
        jwks_cache_file=workdir / "jwks.json",
        rate_limit_enabled="false",
        max_connections_per_client=1_000_000,
        probe_interval_seconds=1,
        map_refresh_seconds=3600,
    )
    proxy.log = workdir / f"{name}-router.log"
    return proxy


@contextlib.contextmanager
def system(workdir: Path, clients: int, log_level: str, latency_ms: float) -> Iterator[Rig]:
    """PostgreSQL, regional_api, the floor and a router in front of each; stopped at the end."""
    server = start_server("bench-floor", durable=True, statement_stats=True)
    started: list[Proc | ServiceProcess] = []
    try:
        dsn = create_database(server.admin_dsn, "floor", drop_existing=True)
        upgrade(ROOT / "regional_api" / "migrations", dsn)
        cinema_id, reads = _seed(dsn)
        issuer = TestIssuer(kid="bench-floor")
        (workdir / "jwks.json").write_text(json.dumps(issuer.jwks))
        tokens = [issuer.token(sub=f"floor-user-{i}", ttl=3600) for i in range(clients)]
        extra = {"REGIONAL_LOG_LEVEL": log_level}
        extra["REGIONAL_PAYMENT_PROVIDER_LATENCY_MS"] = f"{latency_ms:g}"
        api = start_api(dsn, issuer, workdir, extra)
        started.append(api)
        env = {"FLOOR_DATABASE_URL": dsn, "FLOOR_JWKS_FILE": str(workdir / "jwks.json")}
        env |= {"FLOOR_REGION": REGION, "FLOOR_PROVIDER_LATENCY_MS": f"{latency_ms:g}"}
        floor = Proc("benchmarks.floor:create_app", env, log=workdir / "floor.log")
        started.append(floor.start())
        assert api.pid is not None
        assert floor.proc is not None
        apps = {"regional_api": (api.url, api.pid), "floor": (floor.url, floor.proc.pid)}
        targets = [Target(app, "direct", url, pid) for app, (url, pid) in apps.items()]
        with dead_url() as nowhere:
            for app, (url, pid) in apps.items():
                proxy = _routed(url, workdir, app, nowhere)
                started.append(proxy.start())
                assert proxy.proc is not None
                targets.append(Target(app, "router", proxy.url, pid, proxy.proc.pid))
            data_dir = getattr(server, "data_dir", None)
            master = int((data_dir / "postmaster.pid").read_text().split()[0]) if data_dir else None
            log = data_dir / "server.log" if data_dir else None
            yield Rig(dsn, "floor", master, log, cinema_id, reads, tokens, targets)
    finally:
        for proc in reversed(started):
            proc.stop() if isinstance(proc, ServiceProcess) else proc.kill()
        server.stop()


def run(
    pool: Executor,
    *,
    seconds: float,
    clients: int = 64,
    log_level: str = "INFO",
    latency_ms: float = 0.0,
    progress: Any = print,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """The whole benchmark (also `make bench`'s): the figures for `floor_report.section`."""
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp,
        system(Path(tmp), clients, log_level, latency_ms) as rig,
    ):
        progress(f"  floor: system up in {time.monotonic() - started:.1f} s")
        if profile_dir is not None:
            profile_holds(pool, rig, seconds, clients, profile_dir)
            return {}
        rows = run_all(pool, rig, seconds, clients, progress)
    return {
        "clients": clients,
        "seconds": seconds,
        "log_level": log_level,
        "provider_latency_ms": latency_ms,
        "duration_s": round(time.monotonic() - started, 1),
        "rows": rows,
    }


def write_doc(result: dict[str, Any], command: str) -> None:
    """Replace the figures between the markers of docs/benchmarks/floor.md."""
    load = os.getloadavg()[0]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = "\n".join(
        [
            "<!-- figures -->",
            f"`{command}` on {when}, {os.cpu_count()} cores, load average {load:.1f} at the"
            f" end, {result['duration_s']:.0f} s in all.",
            "",
            *section({"floor": result}, heading="### Figures"),
            "<!-- /figures -->",
        ]
    )
    text = (
        DOC.read_text() if DOC.exists() else "# The floor\n\n<!-- figures -->\n<!-- /figures -->\n"
    )
    pattern = re.compile(r"<!-- figures -->.*<!-- /figures -->", flags=re.S)
    DOC.write_text(pattern.sub(lambda _: block, text))


def main() -> None:
    """Measure, print the report, and optionally rewrite the doc's figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load run")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--log-level", default="INFO", help="regional_api's (INFO as deployed)")
    parser.add_argument("--provider-latency-ms", type=float, default=0.0)
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOC.relative_to(ROOT)}")
    parser.add_argument("--profile", type=Path, help="only profile regional_api's holds, here")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        result = run(
            pool,
            seconds=args.seconds,
            clients=args.clients,
            log_level=args.log_level,
            latency_ms=args.provider_latency_ms,
            profile_dir=args.profile,
        )
    if args.profile:
        return
    print("\n".join(section({"floor": result})))
    if args.write:
        command = f".venv/bin/python -m benchmarks.floor_bench --seconds {args.seconds:g} --write"
        write_doc(result, command)


if __name__ == "__main__":
    main()
