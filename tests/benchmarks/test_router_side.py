"""The admitted customers' requests read from a router access log, and the report's line."""

import json
from pathlib import Path

from benchmarks.suite import router_side
from benchmarks.suite.line_doc import _router_side


def _line(method: str, path: str, ms: float, logger: str = "access") -> str:
    entry = {"logger": logger, "msg": "request", "method": method, "path": path, "ms": ms}
    return json.dumps(entry) + "\n"


def test_only_the_rush_shows_writes_after_the_offset_are_counted(tmp_path: Path) -> None:
    log = tmp_path / "router.log"
    log.write_text(_line("POST", "/shows/shw-1/holds", 999.0))  # before the rush
    offset = router_side.log_offset(log)
    with log.open("a") as out:
        out.write(_line("POST", "/shows/shw-1/holds", 100.0))
        out.write(_line("POST", "/shows/shw-1/best-available", 300.0))
        out.write(_line("POST", "/shows/shw-2/holds", 5000.0))  # another show
        out.write(_line("GET", "/shows/shw-1/line", 7000.0))  # not a write
        out.write(_line("POST", "/reservations/res-1/payments", 500.0))
        out.write("uvicorn says something\n")
        out.write(_line("POST", "/shows/shw-1/holds", 9000.0, logger="router"))
    figures = router_side.admitted_requests({log: offset}, "shw-1")
    assert (figures["holds_requests"], figures["payments_requests"]) == (2, 1)
    assert figures["admitted_holds"]["max_ms"] == 300.0
    assert figures["admitted_payments_less_provider"]["p50_ms"] == 200.0
    assert router_side.log_offset(tmp_path / "absent.log") == 0


def test_the_report_shows_the_router_side_beside_the_generator_lag(tmp_path: Path) -> None:
    log = tmp_path / "router.log"
    log.write_text(_line("POST", "/shows/shw-1/holds", 120.0))
    shown = {
        "router_side": router_side.admitted_requests({log: 0}, "shw-1"),
        "generator_loop_lag_ms": {"p50_ms": 1.0, "p99_ms": 99.0, "max_ms": 250.0},
    }
    [line] = _router_side(shown)
    assert "holds p50 120.0 ms" in line
    assert "max 250.0 ms" in line
    assert _router_side({}) == []


def test_several_routers_logs_are_read_together_each_from_its_offset(tmp_path: Path) -> None:
    first, second = tmp_path / "router.log", tmp_path / "router-2.log"
    first.write_text(_line("POST", "/shows/shw-1/holds", 999.0))  # before the rush
    second.write_text("")
    offsets = {log: router_side.log_offset(log) for log in (first, second)}
    with first.open("a") as out:
        out.write(_line("POST", "/shows/shw-1/holds", 100.0))
    with second.open("a") as out:
        out.write(_line("POST", "/shows/shw-1/holds", 200.0))
        out.write(_line("POST", "/reservations/res-1/payments", 500.0))
    figures = router_side.admitted_requests(offsets, "shw-1")
    assert (figures["logs"], figures["holds_requests"], figures["payments_requests"]) == (2, 2, 1)
    assert figures["admitted_holds"]["max_ms"] == 200.0
