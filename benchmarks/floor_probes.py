"""What the floor benchmark reads around each run: CPU from /proc, connections, statements.

PostgreSQL's processes are told apart by their titles (`benchmarks.floor_report.is_backend`);
new connections are the server log's `connection authorized` lines (log_connections on);
statements come from pg_stat_statements of the benchmark's database.
"""

import contextlib
import os
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.floor_report import is_backend
from benchmarks.holds import children_of

STATEMENTS = """
SELECT query, calls FROM pg_stat_statements
WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = %s)
  AND query NOT LIKE '%%pg_stat_statements%%'
"""


def _times(pid: int) -> tuple[float, float]:
    """(own CPU, reaped children's CPU) seconds of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _title(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


Reading = dict[str, tuple[str, float]]  # process -> (kind, CPU seconds so far)


def pg_cpu(master: int | None) -> Reading:
    """CPU seconds so far of a server's processes, by kind; `reaped`: of its exited children."""
    if master is None:
        return {}
    own, reaped = _times(master)
    found = {"reaped": ("pg_backends", reaped), str(master): ("pg_background", own)}
    for pid in children_of(master):
        with contextlib.suppress(OSError, IndexError):
            kind = "pg_backends" if is_backend(_title(pid)) else "pg_background"
            found[str(pid)] = (kind, _times(pid)[0])
    return found


def pg_spent(before: Reading, after: Reading) -> dict[str, float]:
    """CPU seconds the server's client backends and background processes used in between.

    A process that exited meanwhile left its whole CPU time in the postmaster's reaped-children
    time (counted as backends: mostly connections that closed); its part before is taken off.
    """
    spent = {"pg_backends": 0.0, "pg_background": 0.0}
    for key, (kind, seconds) in after.items():
        spent[kind] += seconds - before.get(key, (kind, 0.0))[1]
    for key, (_, seconds) in before.items():
        if key not in after:
            spent["pg_backends"] -= seconds
    return spent


def cpu(app_pid: int, router_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of the app (and the router) a target's requests run in."""
    used = {"app": _times(app_pid)[0]}
    if router_pid is not None:
        used["router"] = _times(router_pid)[0]
    return used


def log_size(log: Path | None) -> int:
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
