"""The floor benchmark's pure parts: process kinds, statements per operation, merging, report."""

from typing import Any

import pytest

from benchmarks import floor_report
from benchmarks.floor_probes import pg_spent
from benchmarks.floor_report import BEFORE, is_backend, merge, merged, per_op, section
from benchmarks.run import floor_options, parse_args
from benchmarks.suite import report


def _row(op: str, app: str, path: str, **figures: Any) -> dict[str, Any]:
    cpu = {"app": 1.0, "pg_backends": 0.5, "pg_background": 0.0}
    if path == "router":
        cpu["router"] = 0.25
    row: dict[str, Any] = {
        "op": op,
        "app": app,
        "path": path,
        "seconds": 2.0,
        "ok": 100,
        "ok_per_s": 50.0,
        "conflicts": 0,
        "errors": 0,
        "p50_ms": 10.0,
        "p99_ms": 40.0,
        "new_connections": 0,
        "cpu_ms_per_op": cpu,
        "statements": {"SELECT * FROM claim_seats($1)": 1.0},
    }
    return row | figures


def test_client_backends_are_told_from_background_processes() -> None:
    assert is_backend("postgres: postgres floor 127.0.0.1(53422) idle")
    assert is_backend("postgres: postgres floor [local] SELECT")
    for title in (
        "postgres: checkpointer ",
        "postgres: walwriter ",
        "postgres: autovacuum launcher ",
    ):
        assert not is_backend(title)
    assert not is_backend("/usr/lib/postgresql/15/bin/postgres -D /data -p 5432")


def test_statements_per_operation_merge_texts_and_drop_rare_ones() -> None:
    calls = [
        ("SELECT *\n  FROM claim_seats($1)", 300),
        ("SELECT * FROM claim_seats($1)", 100),  # the same text once whitespace is folded
        ("UPDATE reservations SET status = 'expired'", 2),  # the sweeper, not the operation
    ]
    assert per_op(calls, ops=200) == {"SELECT * FROM claim_seats($1)": 2.0}
    assert floor_report.statement_label("x" * 100, width=10) == "x" * 9 + "…"


def test_rounds_merge_into_pooled_rates_and_operation_weighted_cpu() -> None:
    first = _row("hold 1 seat", "floor", "direct", ok=100, cpu_ms_per_op={"app": 1.0})
    second = _row("hold 1 seat", "floor", "direct", ok=300, p50_ms=30.0)
    second["cpu_ms_per_op"] = {"app": 2.0}
    one = merge([first, second])
    assert one["ok"] == 400
    assert one["ok_per_s"] == 100.0  # 400 in 4 s
    assert one["cpu_ms_per_op"]["app"] == pytest.approx(1.75)  # (100 x 1 + 300 x 2) / 400
    assert one["p50_ms"] == 20.0
    assert one["rounds"] == 2
    assert one["app_by_round"] == [1.0, 2.0]
    rows = merged([first, _row("seat map", "floor", "direct"), second])
    assert [(r["op"], r["rounds"]) for r in rows] == [("hold 1 seat", 2), ("seat map", 1)]


def test_the_report_gives_regional_api_as_ratios_to_the_floor_and_the_ab() -> None:
    rows = [
        _row(
            "hold 1 seat", "regional_api", "direct", cpu_ms_per_op={"app": 2.0, "pg_backends": 1.0}
        ),
        _row("hold 1 seat", BEFORE, "direct", cpu_ms_per_op={"app": 2.5, "pg_backends": 1.0}),
        _row("hold 1 seat", "floor", "direct", cpu_ms_per_op={"app": 1.0, "pg_backends": 0.5}),
        _row("hold 1 seat", "regional_api", "router"),
        _row("hold 1 seat", "floor", "router"),
    ]
    figures = {"clients": 64, "seconds": 2.0, "log_level": "INFO", "provider_latency_ms": 0.0}
    text = "\n".join(section({"floor": figures | {"rows": rows}}))
    assert "| hold 1 seat | direct | 1.00 | 2.00 | 2.00 | 2.00 | 3.00 | 1.50 |" in text
    assert "| hold 1 seat | router | 1.00 | 1.00 | 1.00 | 1.00 | 1.75 | 1.75 |" in text
    assert "| hold 1 seat | direct | 50 | 50 | 2.50 | 2.00 | -20% | 3.50 | 3.00 |" in text
    assert "1.00 `SELECT * FROM claim_seats($1)`" in text
    assert section({}) == []
    whole = report.render({"floor": figures | {"rows": rows}})
    assert "## The floor" in whole


def test_two_rounds_are_pooled_and_each_rounds_ratio_shown() -> None:
    def run(app: str, ok: int, ms: float) -> dict[str, Any]:
        cpu = {"app": ms, "router": 0.3, "pg_backends": 0.5}
        return _row("hold 1 seat", app, "router", ok=ok, cpu_ms_per_op=cpu)

    # regional_api: 1.0 then 1.6 ms (a noisy second round), the floor 1.0 ms in both
    rows = [run("regional_api", 300, 1.0), run("floor", 300, 1.0)]
    rows += [run("regional_api", 100, 1.6), run("floor", 300, 1.0)]
    figures = {"clients": 64, "seconds": 2.0, "log_level": "INFO", "provider_latency_ms": 0.0}
    text = "\n".join(section({"floor": figures | {"rounds": 2, "rows": merged(rows)}}))

    pooled = (300 * 1.0 + 100 * 1.6) / 400  # CPU of both rounds over their operations: 1.15
    assert f"| hold 1 seat | router | 0.67 | {pooled:.2f} |" in text
    assert "| 1.00, 1.60 |" in text
    assert "2 interleaved rounds" in text
    assert "pools the rounds" in text
    one = "\n".join(section({"floor": figures | {"rounds": 1, "rows": merged(rows[:2])}}))
    assert "one round" in one
    assert "by round" not in one


def test_make_bench_runs_the_floor_in_two_rounds_and_quick_in_one() -> None:
    full, quick = floor_options(parse_args([])), floor_options(parse_args(["--quick"]))
    assert (full.rounds, full.seconds) == (2, 2.0)
    assert (quick.rounds, quick.seconds) == (1, 1.0)


def test_postgres_cpu_of_exited_processes_counts_once_as_backends() -> None:
    before = {
        "reaped": ("pg_backends", 10.0),
        "1": ("pg_background", 5.0),  # the postmaster
        "2": ("pg_background", 1.0),  # an autovacuum worker that exits during the run
        "3": ("pg_backends", 2.0),
    }
    after = {
        "reaped": ("pg_backends", 11.5),  # worker 2 exited having used 1.5 s in all
        "1": ("pg_background", 5.1),
        "3": ("pg_backends", 2.5),
        "4": ("pg_backends", 0.3),  # a connection opened during the run
    }
    spent = pg_spent(before, after)
    assert spent["pg_background"] == pytest.approx(0.1)
    assert spent["pg_backends"] == pytest.approx(0.5 + 0.3 + 0.5)  # 3, 4, and 2's last 0.5 s
