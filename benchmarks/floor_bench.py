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
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.floor_probes import (
    cpu,
    log_size,
    new_connections,
    pg_cpu,
    pg_spent,
    statement_calls,
)
from benchmarks.floor_report import BEFORE, KEYED, OPS, merged, per_op, section
from benchmarks.holds import Hall, Load, run_load, seed_hall, start_api
from benchmarks.suite import profile
from benchmarks.suite.loads import summarise
from common.ids import new_id
from common.migrate import upgrade
from deploy.local.processes import ServiceProcess
from deploy.local.topology import REGIONAL_ADMISSION
from harness.pg import create_database, start_server
from harness.ports import dead_url
from harness.procs import Proc, directory_map, router
from harness.tokens import TestIssuer

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "floor.md"
REGION = "eu-west"
SCENARIO = dict(zip(OPS, ("hold1", "spread", "hold_pay", "show", "seats"), strict=True))
SCENARIO[KEYED] = "hold_pay_keyed"  # only when asked for (--ops): the floor ignores the keys
HOLDS = frozenset({"hold 1 seat", "hold 2 seats", "hold+pay", KEYED})


@dataclass(frozen=True)
class Options:
    """What to run: sizes, regional_api's settings, the A/B tree, which paths."""

    seconds: float
    clients: int = 64
    log_level: str = "INFO"
    latency_ms: float = 0.0
    before: Path | None = None
    routed: bool = True
    ops: tuple[str, ...] = OPS
    rounds: int = 1  # every operation x target, this many times over (interleaved)


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


def measure(
    pool: Executor, rig: Rig, admin: psycopg.Connection[Any], target: Target, load: Load
) -> dict[str, Any]:
    """One load run on one target, with CPU, new connections and statements per operation."""
    admin.execute("SELECT pg_stat_statements_reset()")
    before = cpu(target.app_pid, target.router_pid)
    offset, pg_before = log_size(rig.log), pg_cpu(rig.master)
    outcome = pool.submit(run_load, load).result()
    after, pg_after = cpu(target.app_pid, target.router_pid), pg_cpu(rig.master)
    ops = max(1, outcome.ok + outcome.conflicts + outcome.errors)
    used = {part: after[part] - before[part] for part in after}
    used |= pg_spent(pg_before, pg_after) if rig.master else {}
    spent = {part: round(1000 * seconds / ops, 3) for part, seconds in used.items()}
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
    pool: Executor, rig: Rig, options: Options, progress: Any = print
) -> list[dict[str, Any]]:
    """Warm every target up, then each operation x target, one after the other.

    Rounds after the first alternate the targets' order, so none always runs first.
    """
    hall = _hall(rig, "hold+pay")
    for target in rig.targets:  # connections, prepared statements, the token caches
        for scenario, seconds in (("hold_pay", 1.0), ("seats", 0.5)):
            load = Load(scenario, target.url, seconds, options.clients, rig.tokens, hall)
            pool.submit(run_load, load).result()
    rows = []
    with psycopg.connect(rig.dsn, autocommit=True) as admin:
        for op, target in [
            (op, t)
            for n in range(options.rounds)
            for op in options.ops
            for t in (rig.targets if n % 2 == 0 else rig.targets[::-1])  # no target always first
        ]:
            hall = _hall(rig, op)
            load = Load(
                SCENARIO[op], target.url, options.seconds, options.clients, rig.tokens, hall
            )
            row = {"op": op} | measure(pool, rig, admin, target, load)
            rows.append(row)
            spent = row["cpu_ms_per_op"]
            progress(
                f"  {op:16} {target.path:6} {target.app:22} {row['ok_per_s']:6.0f}/s"
                f"  app {spent['app']:.2f} ms/op  PG {spent['pg_backends']:.2f} ms/op"
                f"  new connections {row['new_connections']}"
            )
    return rows


def profile_holds(
    pool: Executor, rig: Rig, options: Options, out: Path, path: str = "direct"
) -> None:
    """py-spy on regional_api during the first of `--ops` (default two-seat holds) on `path`:
    a flame graph, then collapsed stacks."""
    op = options.ops[0] if options.ops != OPS else "hold 2 seats"
    (target,) = [t for t in rig.targets if t.app == "regional_api" and t.path == path]
    stem = "regional_api-holds" if op == "hold 2 seats" and path == "direct" else "regional_api-op"
    for fmt, name in (("flamegraph", f"{stem}.svg"), ("raw", f"{stem}.txt")):
        spy = profile.start(target.app_pid, options.seconds, out / name, fmt)
        hall = _hall(rig, op)
        load = Load(SCENARIO[op], target.url, options.seconds, options.clients, rig.tokens, hall)
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


def routed(app_url: str, workdir: Path, name: str, global_url: str, region: str = REGION) -> Proc:
    """A router whose static map sends the region to one app (not started)."""
    static = workdir / f"{name}-map.json"
    static.write_text(json.dumps(directory_map(name, {region: [app_url]}, {})))
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


def _api(
    dsn: str, issuer: TestIssuer, workdir: Path, env: dict[str, str], tree: Path | None
) -> ServiceProcess:
    """regional_api as the launchers configure it; from another source tree if given (A/B)."""
    if tree is not None:  # uvicorn puts its app dir (the working directory) first on sys.path
        env = env | {"UVICORN_APP_DIR": str(tree.resolve())}
        workdir = workdir / "before"
        workdir.mkdir()
    return start_api(dsn, issuer, workdir, REGIONAL_ADMISSION | env, wait=False)


def _spawn(
    dsn: str,
    workdir: Path,
    options: Options,
    issuer: TestIssuer,
    started: list[Proc | ServiceProcess],
) -> list[Target]:
    """Start regional_api (twice for an A/B), the floor and their routers; wait until ready.

    Every process started is added to `started` at once, for the caller to stop.
    """
    extra = {"REGIONAL_LOG_LEVEL": options.log_level}
    extra["REGIONAL_PAYMENT_PROVIDER_LATENCY_MS"] = f"{options.latency_ms:g}"
    env = {"FLOOR_DATABASE_URL": dsn, "FLOOR_JWKS_FILE": str(workdir / "jwks.json")}
    env |= {"FLOOR_REGION": REGION, "FLOOR_PROVIDER_LATENCY_MS": f"{options.latency_ms:g}"}
    apps = {"regional_api": _api(dsn, issuer, workdir, extra, None)}
    started.append(apps["regional_api"])
    if options.before is not None:
        started.append(apps.setdefault(BEFORE, _api(dsn, issuer, workdir, extra, options.before)))
    floor = Proc("benchmarks.floor:create_app", env, log=workdir / "floor.log")
    started.append(floor.start(None))
    routers = {}
    if options.routed:
        with dead_url() as nowhere:  # no directory: each router reads its static map
            for app, url in [(app, api.url) for app, api in apps.items()] + [("floor", floor.url)]:
                routers[app] = routed(url, workdir, app.replace(" (before)", "-before"), nowhere)
                started.append(routers[app].start(None))
    for api in apps.values():
        api.wait_ready(timeout=90)
    for proc in (floor, *routers.values()):
        proc.wait("/readyz", timeout=90)
    pids = {app: api.pid or 0 for app, api in apps.items()} | {"floor": _pid(floor)}
    urls = {app: api.url for app, api in apps.items()} | {"floor": floor.url}
    targets = [Target(app, "direct", urls[app], pids[app]) for app in pids]
    targets += [
        Target(app, "router", proxy.url, pids[app], _pid(proxy)) for app, proxy in routers.items()
    ]
    return targets


def _pid(proc: Proc) -> int:
    assert proc.proc is not None
    return proc.proc.pid


@contextlib.contextmanager
def system(workdir: Path, options: Options) -> Iterator[Rig]:
    """PostgreSQL, regional_api, the floor and a router in front of each; stopped at the end.

    With `options.before`, a second regional_api from that source tree (with its own router
    too), for an A/B.
    """
    server = start_server("bench-floor", durable=True, statement_stats=True)
    started: list[Proc | ServiceProcess] = []
    try:
        dsn = create_database(server.admin_dsn, "floor", drop_existing=True)
        upgrade(ROOT / "regional_api" / "migrations", dsn)
        cinema_id, reads = _seed(dsn)
        issuer = TestIssuer(kid="bench-floor")
        (workdir / "jwks.json").write_text(json.dumps(issuer.jwks))
        tokens = [issuer.token(sub=f"floor-user-{i}", ttl=3600) for i in range(options.clients)]
        targets = _spawn(dsn, workdir, options, issuer, started)
        data_dir = getattr(server, "data_dir", None)
        master = int((data_dir / "postmaster.pid").read_text().split()[0]) if data_dir else None
        log = data_dir / "server.log" if data_dir else None
        yield Rig(dsn, "floor", master, log, cinema_id, reads, tokens, targets)
    finally:
        for proc in reversed(started):
            proc.stop() if isinstance(proc, ServiceProcess) else proc.kill()
        server.stop()


def run(pool: Executor, options: Options, progress: Any = print) -> dict[str, Any]:
    """The whole benchmark (also `make bench`'s): the figures for `floor_report.section`."""
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp,
        system(Path(tmp), options) as rig,
    ):
        progress(f"  floor: system up in {time.monotonic() - started:.1f} s")
        rows = run_all(pool, rig, options, progress)
    return {
        "clients": options.clients,
        "seconds": options.seconds,
        "log_level": options.log_level,
        "provider_latency_ms": options.latency_ms,
        "duration_s": round(time.monotonic() - started, 1),
        "rounds": options.rounds,
        "rows": merged(rows),
    }


def profile_run(pool: Executor, options: Options, out: Path, path: str = "direct") -> None:
    """Only the py-spy profile of regional_api on one operation and path, written to `out`."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp,
        system(Path(tmp), options) as rig,
    ):
        profile_holds(pool, rig, options, out, path)


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
    parser.add_argument(
        "--profile", type=Path, help="only profile regional_api on the first of --ops, here"
    )
    parser.add_argument(
        "--profile-path", choices=("direct", "router"), default="direct", help="for --profile"
    )
    parser.add_argument(
        "--before", type=Path, help="A/B: also run regional_api from this source tree"
    )
    parser.add_argument("--ops", help=f"comma-separated, of: {', '.join(SCENARIO)}")
    parser.add_argument("--direct-only", action="store_true", help="no router runs")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every run, interleaved")
    args = parser.parse_args()
    options = Options(
        args.seconds,
        args.clients,
        args.log_level,
        args.provider_latency_ms,
        args.before,
        routed=not args.direct_only,
        ops=tuple(op.strip() for op in args.ops.split(",")) if args.ops else OPS,
        rounds=args.rounds,
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        if args.profile:
            profile_run(pool, options, args.profile, args.profile_path)
            return
        result = run(pool, options)
    print("\n".join(section({"floor": result})))
    if args.write:
        write_doc(result, ".venv/bin/python -m benchmarks.floor_bench " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
