"""The benchmark suite's pure parts: percentile maths, parsing, summaries and the report."""

import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks.holds import Hall
from benchmarks.suite import pgbench, profile, report
from benchmarks.suite.onsale import OnSale, Tally, result
from benchmarks.suite.stats import latency_summary, percentile, ratio
from benchmarks.suite.system import merge_peaks


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100, shuffled order must not matter
    assert percentile(list(reversed(values)), 0.5) == pytest.approx(50.5)
    assert percentile(values, 0.99) == pytest.approx(99.01)
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile(values, 1.5)


def test_latency_summary_and_ratio() -> None:
    summary = latency_summary([10.0] * 98 + [100.0, 1000.0])
    assert summary["p50_ms"] == 10.0
    assert summary["max_ms"] == 1000.0
    assert summary["p95_ms"] == 10.0
    assert 100.0 < summary["p99_ms"] < 1000.0
    assert ratio(50, 200) == 0.25
    assert math.isnan(ratio(1, 0))


def test_pgbench_summary_is_parsed() -> None:
    out = "number of failed transactions: 0 (0.000%)\nlatency average = 3.612 ms\ntps = 276.812 (without initial connection time)\n"
    assert pgbench.parse(out) == {"tps": 276.8, "latency_avg_ms": 3.612}
    with pytest.raises(RuntimeError):
        pgbench.parse("connection refused")


def test_profile_groups_self_time_by_component() -> None:
    collapsed = "\n".join(
        [
            "run (asyncio/events.py:80);__call__ (router/proxy/app.py:90) 30",
            "run (asyncio/events.py:80);execute (sqlalchemy/engine/base.py:1) 50",
            "run (asyncio/events.py:80);_run_once (uvloop/loop.py:1) 20",
            "garbage line",
        ]
    )
    summary = profile.summarise(collapsed, top=2)
    assert summary["samples"] == 100
    assert summary["components"] == {
        "SQLAlchemy": 0.5,
        "router (own code)": 0.3,
        "event loop (uvloop in C: socket I/O, callbacks)": 0.2,
    }
    assert summary["top_leaves"][0] == ["execute (sqlalchemy/engine/base.py:1)", 0.5]


def test_onsale_result_counts_conflicts_and_errors() -> None:
    hall = Hall(rows=1, cols=4, seat_ids=[1, 2, 3, 4], show_ids=["show-eu-west-x"])
    tally = Tally(latencies_ms=[5.0, 7.0, 9.0], sold_at=[0.2, 0.5], seats_held=4, seats_sold=4)
    tally.statuses.update({"201": 4, "409 seats_taken": 3, "503 database_unavailable": 1})
    out = result(tally, OnSale("http://x", ["t"] * 5, hall), elapsed=1.25)
    assert out["seats_sold"] == 4
    assert out["capacity"] == 4
    assert out["time_to_sell_out_s"] == 0.5
    assert out["conflicts"] == 3
    assert out["errors"] == 1
    assert out["requests"] == 8
    assert out["p50_ms"] == 7.0


def test_peaks_keep_the_highest_reading() -> None:
    peaks: dict[str, dict[str, float]] = {}
    merge_peaks(peaks, {"router": {"peak_mb": 90.0, "anon_mb": 60.0}})
    merge_peaks(peaks, {"router": {"peak_mb": 80.0, "anon_mb": 70.0}})
    merge_peaks(peaks, {"postgres eu-west (max of 12 children)": {"peak_mb": 30, "anon_mb": 4}})
    assert peaks["router"] == {"peak_mb": 90.0, "anon_mb": 70.0}
    assert peaks["postgres eu-west (backends, max)"]["peak_mb"] == 30.0


def fake_result() -> dict[str, Any]:
    """A small result in the shape `benchmarks.run` writes."""
    hold = {"p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0, "max_ms": 20.0, "conflicts": 0}
    cpu = {"router": 0.5, "eu-west-1": 2.0, "eu-west-2": 2.0, "postgres eu-west": 1.0}
    holds = [
        hold
        | {
            "op": op,
            "mode": "spread",
            "target": target,
            "clients": 64,
            "ok_per_s": rate,
            "errors": 0,
            "ok": 100,
            "seconds": 5,
            "cpu_ms_per_op": cpu,
        }
        for op, target, rate in (
            ("hold", "direct", 400.0),
            ("hold", "router", 300.0),
            ("hold_pay", "direct", 200.0),
            ("hold_pay", "router", 150.0),
        )
    ]
    region = {"ok_per_s": 150.0, "p99_ms": 40.0}
    return {
        "meta": {
            "cores": 2,
            "cpu": "test",
            "memory_mb": 1024,
            "postgres": "15",
            "python": "3.11",
            "git_commit": "abc1234",
            "measured_at": "2026-01-01 00:00 UTC",
            "duration_s": 10,
            "seconds": 5,
        },
        "pgbench": [{"clients": 64, "tps": 2000.0, "latency_avg_ms": 30.0}],
        "holds": holds,
        "onsale": {
            "clients": 2000,
            "capacity": 300,
            "seats_held": 300,
            "seats_sold": 300,
            "time_to_sell_out_s": 2.5,
            "all_answered_s": 3.0,
            "requests": 2500,
            "conflicts": 200,
            "errors": 0,
            "statuses": {"201": 300, "409 seats_taken": 200},
            "p50_ms": 100.0,
            "p95_ms": 200.0,
            "p99_ms": 300.0,
            "max_ms": 400.0,
        },
        "router_overhead": [
            {
                "target": "direct",
                "connections": 64,
                "rps": 2000.0,
                "p50_ms": 1.0,
                "p99_ms": 2.0,
                "proxy_cpu_us": None,
            },
            {
                "target": "router",
                "connections": 64,
                "rps": 1000.0,
                "p50_ms": 2.0,
                "p99_ms": 4.0,
                "proxy_cpu_us": 200.0,
            },
        ],
        "router_paired": [
            {
                "upstream": "regional",
                "target": "direct",
                "p50_ms": 3.0,
                "p99_ms": 5.0,
                "added_ms": 0.0,
            },
            {
                "upstream": "regional",
                "target": "router",
                "p50_ms": 3.3,
                "p99_ms": 5.5,
                "added_ms": 0.3,
            },
        ],
        "regions": [
            {"regions": 1, "ok_per_s": 150.0, "per_region": {"eu-west": region}},
            {"regions": 2, "ok_per_s": 300.0, "per_region": {"eu-west": region, "us-east": region}},
        ],
        "memory": {
            "router": {"peak_mb": 120.0, "anon_mb": 90.0},
            "postgres eu-west (backends, max)": {"peak_mb": 250.0, "anon_mb": 5.0},
        },
        "memory_phases": {"after the hold runs": {"router": {"peak_mb": 100.0, "anon_mb": 80.0}}},
        "profile": {
            "router": {
                "samples": 10,
                "components": {"event loop": 1.0},
                "top_leaves": [["run (asyncio/events.py:80)", 1.0]],
            }
        },
    }


def test_targets_are_judged() -> None:
    met = {row["name"]: row["met"] for row in report.targets(fake_result())}
    assert met == {
        "hold+pay through the router": False,
        "hot on-sale p99": False,
        "peak RSS of every process": False,
    }


def test_a_rush_that_leaves_only_single_seats_is_sold_out_for_pairs() -> None:
    rush = fake_result()["onsale"] | {"seats_sold": 250, "seats_left": 50, "seats_left_paired": 0}
    assert "| 250 / 300 | 50 (0) | 2.50 s (no two free seats adjacent) |" in report._rush_row(
        "x", rush
    )
    rush |= {"seats_left_paired": 4}
    assert "| 50 (4) | not sold out (last sale 2.50 s) |" in report._rush_row("x", rush)


def test_report_renders_every_section(tmp_path: Path) -> None:
    data = json.loads(json.dumps(fake_result()))  # as read back from results.json
    text = report.render(data)
    for heading in (
        "Targets",
        "pgbench",
        "Holds and hold+pay",
        "Hot on-sale",
        "Router overhead",
        "One region vs two",
        "Memory",
        "Profile",
        "What limits it",
    ):
        assert heading in text
    assert "| hold_pay | spread | router | 64 | 150 | 7.5% |" in text
    assert "| router | 100.0 | 120.0 | 90.0 | yes |" in text
    assert "| through the router | 300 | 300 / 300 | - | 2.50 s |" in text
    assert "| regional | router | 3.300 | 5.500 | +0.300 |" in text
    assert "abc1234" in text
    assert "300 / 300" in text
    report.chart(data, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_holds_table_charges_every_router_instance_to_the_router_column() -> None:
    data = fake_result()
    for row in data["holds"]:
        row["cpu_ms_per_op"] = row["cpu_ms_per_op"] | {"router-2": 0.25}  # `make bench`: two
    text = "\n".join(report.holds_section(data))
    # router 0.5 + 0.25; API the two replicas alone (4.00), PostgreSQL 1.00
    assert "| 0 | 0 | 0.75 | 4.00 | 1.00 |" in text
