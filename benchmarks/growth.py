"""Data-growth benchmark: every hot and report statement at 0, 1M and 5M past reservations.

For each size it builds a fresh regional database (migrations, then `benchmarks.history`
generated in SQL), runs every statement of `benchmarks.plans` under EXPLAIN ANALYZE
`--repeat` times (writes rolled back) and reports the median planning and execution time,
the sequential scans of tables that grow with history and whether JIT ran. The hot
statements are measured twice: as one-off statements (a custom plan each call) and as the
hot pool runs them (prepared, generic plan). `--quick` runs 0 and 20,000 only.

    .venv/bin/python -m benchmarks.growth --quick
    .venv/bin/python -m benchmarks.growth --sizes 0,1000000 --write
    .venv/bin/python -m benchmarks.growth --churn     # benchmarks.seat_churn, 0006 vs head
"""

import argparse
import multiprocessing
import os
import statistics
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import growth_routed, plans, seat_churn
from benchmarks.history import History, load
from benchmarks.plans_before import BEFORE
from common.migrate import upgrade
from harness.pg import PgServer, create_database, start_server

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "growth.md"
SIZES = (0, 1_000_000, 5_000_000)
QUICK = (0, 20_000)


@dataclass(frozen=True)
class Row:
    """The median of one statement's runs at one size."""

    size: int
    name: str
    mode: str  # custom (one-off statement) or generic (prepared on the hot pool)
    planning_ms: float
    execution_ms: float
    seq_scans: tuple[str, ...]
    jit: bool


def _median(runs: list[plans.Explained], size: int, mode: str) -> Row:
    return Row(
        size,
        runs[0].name,
        mode,
        statistics.median(r.planning_ms for r in runs),
        statistics.median(r.execution_ms for r in runs),
        tuple(sorted({t for r in runs for t in r.seq_scans})),
        any(r.jit for r in runs),
    )


def _collect(runs: Iterable[list[plans.Explained]], size: int, mode: str) -> list[Row]:
    by_name: dict[str, list[plans.Explained]] = {}
    for batch in runs:
        for run in batch:
            by_name.setdefault(run.name, []).append(run)
    return [_median(batch, size, mode) for batch in by_name.values()]


def _create(admin_dsn: str, name: str) -> str:
    return create_database(admin_dsn, name, drop_existing=True)


@dataclass(frozen=True)
class Measured:
    """One size: statement rows, facts, report CPU, routed CPU per operation."""

    rows: list[Row]
    facts: dict[str, str]
    cpu: dict[str, str]
    dsn: str
    history: History


def measure(server: PgServer, size: int, args: argparse.Namespace) -> Measured:
    """Build the database of `size` reservations and measure every statement there."""
    repeat = args.repeat
    dsn = create_database(server.admin_dsn, f"growth_{size}", drop_existing=True)
    upgrade(ROOT / "regional_api" / "migrations", dsn)
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = _sched_s(conn)
        history = load(conn, reservations=size)
        facts = {"load_s": f"{time.monotonic() - started:.0f}"}
        facts["load: backend on CPU / run queue s"] = " / ".join(
            f"{after - earlier:.0f}" for after, earlier in zip(_sched_s(conn), before, strict=True)
        )
        plans.prepare(conn, history)
        conn.execute("SET jit = off")  # as the service's connections (common/db.py)
        custom = [list(plans.explain(conn, history, extra=BEFORE)) for _ in range(repeat)]
        facts |= _sizes(conn)
        cpu = report_cpu(conn, history, calls=20)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET jit = off")
        generic = [list(plans.explain_generic(conn, history)) for _ in range(repeat)]
    facts |= _claim_plans(dsn, history)
    rows = _collect(custom, size, "custom") + _collect(generic, size, "generic")
    return Measured(rows, facts, cpu, dsn, history)


def _sched_s(conn: psycopg.Connection) -> tuple[float, float]:
    """Seconds the connection's backend has run on a core and waited in the run queue."""
    path = Path(f"/proc/{conn.info.backend_pid}/schedstat")
    on_cpu, waiting, _ = path.read_text().split() if path.exists() else ("0", "0", "")
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def report_cpu(conn: psycopg.Connection, history: History, calls: int) -> dict[str, str]:
    """Per call of each report statement run `calls` times as the service runs it: the mean
    wall time, and the backend's time on a core and waiting in the run queue for one (from
    /proc/<pid>/schedstat, in ns), then the buffers of one more call. Their difference is
    time neither running nor runnable: I/O, locks."""
    if not Path(f"/proc/{conn.info.backend_pid}/schedstat").exists():
        return {}  # an external server

    facts: dict[str, str] = {}
    now = datetime.now(UTC)
    for case in plans.REPORT:
        params = case.params(history, now)
        (cpu0, wait0), started = _sched_s(conn), time.perf_counter()
        for _ in range(calls):
            conn.execute(case.sql, params).fetchall()
        wall = (time.perf_counter() - started) * 1000 / calls
        cpu1, wait1 = _sched_s(conn)
        cpu, waited = (cpu1 - cpu0) * 1000 / calls, (wait1 - wait0) * 1000 / calls
        hit, read = _buffers(conn, case.sql, params)
        facts[case.name] = f"{wall:.1f} / {cpu:.1f} / {waited:.1f} / {hit}+{read}"
    return facts


def _buffers(conn: psycopg.Connection, sql: bytes, params: Any) -> tuple[int, int]:
    """Shared buffers one more (warm) call finds in PostgreSQL's cache and reads from the OS."""
    row = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + sql, params)
    plan = plans.as_plan(row.fetchone())["Plan"]
    return int(plan["Shared Hit Blocks"]), int(plan["Shared Read Blocks"])


def _claim_plans(dsn: str, history: History) -> dict[str, str]:
    """Planning inside claim_seats per 20 calls, as migrated and with the plan mode reset."""
    facts: dict[str, str] = {}
    for label, setting in (
        ("auto", "RESET plan_cache_mode"),
        ("generic", "SET plan_cache_mode = force_generic_plan"),
    ):
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"ALTER FUNCTION {plans.CLAIM_FUNCTION} {setting}".encode())
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                p = plans.claim_planning(conn, history)
        except psycopg.errors.ObjectNotInPrerequisiteState:
            return {}  # pg_stat_statements not loaded
        facts[f"claim_seats {label}: plans/calls, plan ms"] = (
            f"{p.plans}/{p.calls}, {p.mean_plan_ms:.2f}"
        )
    return facts


def _sizes(conn: psycopg.Connection) -> dict[str, str]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM reservations), (SELECT count(*) FROM show_seats),"
        " pg_size_pretty(pg_table_size('show_seats')),"
        " pg_size_pretty(pg_relation_size('show_seats_pkey'))"
    ).fetchone()
    assert row is not None
    return {
        "reservations": str(row[0]),
        "show_seats rows": str(row[1]),
        "show_seats": row[2],
        "show_seats_pkey": row[3],
    }


def table(rows: list[Row], facts: dict[int, dict[str, str]]) -> str:
    """The report: one line per statement and mode, one column group per size."""
    sizes = sorted(facts)
    head = "| statement | plan | " + " | ".join(f"{s:,} rows: plan / exec ms" for s in sizes)
    lines = [head + " | seq scans of growing tables |", "|---|---|" + "---:|" * len(sizes) + "---|"]
    keys = dict.fromkeys((r.name, r.mode) for r in rows)
    for name, mode in keys:
        cells, scans = [], set()
        for size in sizes:
            match = [r for r in rows if (r.size, r.name, r.mode) == (size, name, mode)]
            if not match:
                cells.append("")
                continue
            r = match[0]
            cells.append(f"{r.planning_ms:.2f} / {r.execution_ms:.2f}{' JIT' if r.jit else ''}")
            scans |= {f"{t} ({size:,})" for t in r.seq_scans}
        lines.append(
            f"| {name} | {mode} | " + " | ".join(cells) + f" | {', '.join(sorted(scans)) or '-'} |"
        )
    lines.append("")
    lines.append("| size | " + " | ".join(facts[sizes[0]]) + " |")
    lines.append("|---:|" + "---:|" * len(facts[sizes[0]]))
    for size in sizes:
        lines.append(f"| {size:,} | " + " | ".join(facts[size].values()) + " |")
    return "\n".join(lines)


def cpu_table(cpu: dict[int, dict[str, str]]) -> str:
    """The report statements run as the service runs them: wall ms (median) / backend CPU ms."""
    sizes = [size for size in sorted(cpu) if cpu[size]]
    if not sizes:
        return ""
    lines = [
        "",
        "",
        "| report statement, 20 plain calls (mean per call; buffers: hit+read) | "
        + " | ".join(f"{s:,} rows: wall / CPU / run queue ms / buffers" for s in sizes)
        + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for name in cpu[sizes[0]]:
        lines.append(f"| {name} | " + " | ".join(cpu[s].get(name, "") for s in sizes) + " |")
    return "\n".join(lines)


def write_doc(report: str, command: str) -> None:
    """Replace the results block of docs/benchmarks/growth.md."""
    text = DOC.read_text() if DOC.exists() else "<!-- results:start -->\n<!-- results:end -->\n"
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    load_avg = os.getloadavg()[0]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{start}\n`{command}` on {stamp}, {os.cpu_count()} CPUs, load average {load_avg:.1f} at the end.\n\n{report}\n{end}"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    DOC.write_text(head + block + tail)


def main() -> None:
    """Measure at every size, print, and optionally write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--quick", action="store_true", help="sizes 0 and 20,000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--routed-seconds", type=float, default=4.0, help="load per routed operation (0: none)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="of the routed operations")
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOC.relative_to(ROOT)}")
    parser.add_argument("--churn", action="store_true", help="only the seat churn, 0006 vs head")
    args = parser.parse_args()
    if args.churn:
        server = start_server("bench-churn", durable=False)
        try:
            print(seat_churn.compare(partial(_create, server.admin_dsn)))
        finally:
            server.stop()
        return
    sizes = QUICK if args.quick else tuple(int(s) for s in args.sizes.split(","))
    server = start_server("bench-growth", durable=False, statement_stats=True)
    found: dict[int, Measured] = {}
    routed: dict[int, dict[str, dict[str, Any]]] = {}
    context = multiprocessing.get_context("spawn")
    try:
        for size in sizes:
            found[size] = m = measure(server, size, args)
            print(f"size {size:,}: {m.facts} {m.cpu}", flush=True)
        if args.routed_seconds:
            grown = {size: (m.dsn, m.history) for size, m in found.items()}
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                routed = growth_routed.run(
                    pool, server, grown, seconds=args.routed_seconds, rounds=args.rounds
                )
    finally:
        server.stop()
    rows = [row for m in found.values() for row in m.rows]
    report = table(rows, {size: m.facts for size, m in found.items()})
    report += cpu_table({size: m.cpu for size, m in found.items()})
    report += growth_routed.table(routed)
    print(report)
    if args.write:
        flags = "--quick" if args.quick else f"--sizes {args.sizes}"
        write_doc(report, f".venv/bin/python -m benchmarks.growth {flags} --write")


if __name__ == "__main__":
    main()
