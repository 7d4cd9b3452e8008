"""The floor benchmark's pure parts: PostgreSQL process kinds, statement labels, the report.

`benchmarks/floor_bench.py` measures; this turns its rows into Markdown (docs/benchmarks/floor.md
and the `make bench` report) with every regional_api figure as a ratio to the floor's.
"""

import math
import re
from collections.abc import Iterable
from typing import Any

OPS = ("hold 1 seat", "hold 2 seats", "hold+pay", "GET /shows/{id}", "seat map")
KEYED = "hold+pay with Idempotency-Key"  # as the web client pays; not in `make bench`'s runs
BEFORE = "regional_api (before)"  # the A/B's other regional_api, from an older source tree
CPU_PARTS = ("app", "router", "pg_backends", "pg_background")
_PEER = re.compile(r"\(\d+\)|\[local\]")  # a client backend's title names its peer


def is_backend(title: str) -> bool:
    """Whether a PostgreSQL process title (`postgres: user db host(port) state`) is a client's."""
    return bool(_PEER.search(title))


def statement_label(query: str, width: int = 70) -> str:
    """A statement's text on one line, cut to `width` characters."""
    line = " ".join(query.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def per_op(calls: Iterable[tuple[str, int]], ops: int, floor: float = 0.15) -> dict[str, float]:
    """Calls of each statement per operation, the rare ones (background tasks) left out."""
    found: dict[str, float] = {}
    for query, count in calls:
        label = statement_label(query)
        found[label] = found.get(label, 0.0) + count / max(ops, 1)
    return {k: round(v, 2) for k, v in sorted(found.items(), key=lambda kv: -kv[1]) if v >= floor}


def _ops(row: dict[str, Any]) -> int:
    return max(1, int(row["ok"] + row["conflicts"] + row["errors"]))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from the same run repeated: totals pooled, CPU per operation weighted by
    operations (each process's CPU of every round over every round's operations), latency
    percentiles the median of the rounds'; each round's app CPU kept (`app_by_round`)."""
    ops = [_ops(r) for r in rounds]
    weight = sum(ops)
    parts = {part for r in rounds for part in r["cpu_ms_per_op"]}
    statements = {label for r in rounds for label in r["statements"]}
    first = rounds[0]
    return first | {
        "rounds": len(rounds),
        "seconds": sum(r["seconds"] for r in rounds),
        "ok": sum(r["ok"] for r in rounds),
        "conflicts": sum(r["conflicts"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "ok_per_s": round(sum(r["ok"] for r in rounds) / sum(r["seconds"] for r in rounds), 1),
        "p50_ms": _median([r["p50_ms"] for r in rounds]),
        "p99_ms": _median([r["p99_ms"] for r in rounds]),
        "new_connections": sum(r["new_connections"] for r in rounds),
        "app_by_round": [r["cpu_ms_per_op"].get("app", 0.0) for r in rounds],
        "cpu_ms_per_op": {
            p: round(
                sum(r["cpu_ms_per_op"].get(p, 0.0) * n for r, n in zip(rounds, ops, strict=True))
                / weight,
                3,
            )
            for p in sorted(parts)
        },
        "statements": {
            label: round(
                sum(r["statements"].get(label, 0.0) * n for r, n in zip(rounds, ops, strict=True))
                / weight,
                2,
            )
            for label in statements
        },
    }


def merged(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of several rounds merged per (op, app, path), in first-seen order."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["op"], row["app"], row["path"]), []).append(row)
    return [merge(group) for group in groups.values()]


def total_cpu(row: dict[str, Any]) -> float:
    """CPU milliseconds per operation over every process of the path."""
    return float(sum(row["cpu_ms_per_op"].get(part, 0.0) for part in CPU_PARTS))


def _find(rows: list[dict[str, Any]], op: str, app: str, path: str) -> dict[str, Any] | None:
    return next((r for r in rows if (r["op"], r["app"], r["path"]) == (op, app, path)), None)


def _ratio(value: float, floor: float) -> str:
    return "-" if not floor or math.isnan(floor) else f"{value / floor:.2f}"


def _cpu(row: dict[str, Any], part: str) -> str:
    value = row["cpu_ms_per_op"].get(part)
    return "-" if value is None else f"{value:.2f}"


def rows_table(rows: list[dict[str, Any]]) -> list[str]:
    """Every run: rate, latency, CPU per process, new PostgreSQL connections."""
    lines = [
        "| op | path | app | ok/s | p50 ms | p99 ms | 409s | errors | app CPU ms/op"
        " | router CPU ms/op | PG backends ms/op | PG background ms/op | total ms/op"
        " | new PG connections |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['op']} | {r['path']} | {r['app']} | {r['ok_per_s']:.0f} | {r['p50_ms']:.1f}"
            f" | {r['p99_ms']:.1f} | {r['conflicts']} | {r['errors']} | {_cpu(r, 'app')}"
            f" | {_cpu(r, 'router')} | {_cpu(r, 'pg_backends')} | {_cpu(r, 'pg_background')}"
            f" | {total_cpu(r):.2f} | {r['new_connections']} |"
        )
    return lines


def _by_round(api: dict[str, Any], floor: dict[str, Any]) -> str:
    """The app CPU ratio of each round, in order (one noisy round shows as the odd one)."""
    pairs = zip(api.get("app_by_round", ()), floor.get("app_by_round", ()), strict=False)
    return ", ".join(_ratio(a, f) for a, f in pairs) or "-"


def ratio_table(rows: list[dict[str, Any]]) -> list[str]:
    """regional_api / floor per operation and path, for each process and in total."""
    rounds = max((int(r.get("rounds", 1)) for r in rows), default=1) > 1
    lines = [
        "| op | path | ok/s | app CPU | PG CPU (backends) | total CPU | regional_api total ms/op"
        " | floor total ms/op |" + (" app CPU by round |" if rounds else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if rounds else ""),
    ]
    for op in (*OPS, KEYED):
        for path in ("direct", "router"):
            api, floor = _find(rows, op, "regional_api", path), _find(rows, op, "floor", path)
            if api is None or floor is None:
                continue
            a, f = api["cpu_ms_per_op"], floor["cpu_ms_per_op"]
            lines.append(
                f"| {op} | {path} | {_ratio(api['ok_per_s'], floor['ok_per_s'])}"
                f" | {_ratio(a['app'], f['app'])}"
                f" | {_ratio(a['pg_backends'], f['pg_backends'])}"
                f" | {_ratio(total_cpu(api), total_cpu(floor))}"
                f" | {total_cpu(api):.2f} | {total_cpu(floor):.2f} |"
                + (f" {_by_round(api, floor)} |" if rounds else "")
            )
    return lines


def ab_table(rows: list[dict[str, Any]]) -> list[str]:
    """regional_api before and after a change, per path, from the same run (empty without one)."""
    lines = [
        "| op | path | ok/s before | ok/s after | app CPU ms/op before | after | change"
        " | total CPU ms/op before | after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in (*OPS, KEYED):
        for path in ("direct", "router"):
            old, new = _find(rows, op, BEFORE, path), _find(rows, op, "regional_api", path)
            if old is None or new is None:
                continue
            a, b = old["cpu_ms_per_op"]["app"], new["cpu_ms_per_op"]["app"]
            change = f"{(b - a) / a:+.0%}" if a else "-"
            lines.append(
                f"| {op} | {path} | {old['ok_per_s']:.0f} | {new['ok_per_s']:.0f} | {a:.2f}"
                f" | {b:.2f} | {change} | {total_cpu(old):.2f} | {total_cpu(new):.2f} |"
            )
    return lines if len(lines) > 2 else []


def _ab_block(rows: list[dict[str, Any]]) -> list[str]:
    table = ab_table(rows)
    if not table:
        return []
    return ["A/B: regional_api from the source tree before the change, same run:", "", *table, ""]


def statements_table(rows: list[dict[str, Any]]) -> list[str]:
    """Top-level statements per operation (pg_stat_statements), direct runs only."""
    lines = ["| op | app | statements/op | calls per op, by statement |", "|---|---|---:|---|"]
    for r in rows:
        if r["path"] != "direct" or not r.get("statements"):
            continue
        listed = "<br>".join(
            f"{calls:.2f} `{label.replace('|', '/')}`" for label, calls in r["statements"].items()
        )
        total = sum(r["statements"].values())
        lines.append(f"| {r['op']} | {r['app']} | {total:.2f} | {listed} |")
    return lines


def _rounds(figures: dict[str, Any]) -> str:
    """How the rounds were run and pooled, for the report's text."""
    rounds = int(figures.get("rounds", 1))
    if rounds < 2:
        return "one round"
    return (
        f"{rounds} interleaved rounds (every operation on every target, then again with the"
        " targets in reverse order); each figure pools the rounds: a process's CPU seconds in"
        " all of them over all their operations, so one noisy round does not decide a ratio"
        " (each round's app CPU ratio is in the last column)"
    )


def section(result: dict[str, Any], heading: str = "## The floor") -> list[str]:
    """The floor benchmark as Markdown (docs/benchmarks/floor.md and `make bench`'s report)."""
    figures = result.get("floor")
    if not figures:
        return []
    rows = figures["rows"]
    return [
        heading,
        "",
        f"regional_api against `benchmarks/floor.py` (the same statements behind a minimal"
        f" FastAPI + psycopg app) on one PostgreSQL, in the same run, {figures['clients']}"
        f" connections, {figures['seconds']:g} s per run, {_rounds(figures)}, regional_api"
        f" log level {figures['log_level']}, provider latency"
        f" {figures['provider_latency_ms']:g} ms. CPU is read from /proc per operation (409s"
        " and errors included); PostgreSQL's is split into client backends and background"
        " processes (a process that exited during the run counts as a backend); new"
        " connections are PostgreSQL's `connection authorized` log lines during the run.",
        "",
        "Ratios, regional_api / floor (1.00 = at the floor):",
        "",
        *ratio_table(rows),
        "",
        *_ab_block(rows),
        "Every run:",
        "",
        *rows_table(rows),
        "",
        "Statements per operation (pg_stat_statements, top level, reset before each run;"
        " statements under 0.15 per operation left out: the waiting-room refresh and the"
        " admitter of every regional_api poll the database on their own):",
        "",
        *statements_table(rows),
        "",
    ]
