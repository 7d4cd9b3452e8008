"""The admitted customers' requests as the router timed them, from its access log.

The generator's own figures include its event loop's lateness and its client's CPU; a browser
has neither on the server. The router's access log (`router/proxy/accesslog.py`) has each
request's `ms`: from the router's ASGI call (headers read) to the end of its answer, its own
line's wait included. Only admitted customers send holds, best-available asks and payments, so
those POSTs during the rush are theirs (the sustainable-rate run before it ends first). With
several router instances, each writes its own log: `admitted_requests` reads them all.
"""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.suite.line_rush import PROVIDER_MS
from benchmarks.suite.stats import latency_summary

HOLDS = re.compile(r"^/shows/(?P<show>[^/]+)/(holds|best-available)$")
PAYMENTS = re.compile(r"^/reservations/[^/]+/payments$")
SOURCE = "router access log: ms from the router reading a request's headers to its answer's end"


def log_offset(log: Path) -> int:
    """How far the router's log goes now: the rush's lines come after it."""
    return log.stat().st_size if log.exists() else 0


def admitted_requests(offsets: Mapping[Path, int], show_id: str) -> dict[str, Any]:
    """p50/p95/p99/max of the admitted customers' holds and payments the routers logged, each
    router's log read from its offset."""
    holds: list[float] = []
    payments: list[float] = []
    for log, offset in offsets.items():
        _read(log, offset, show_id, holds, payments)
    return {
        "source": SOURCE,
        "logs": len(offsets),
        "holds_requests": len(holds),
        "payments_requests": len(payments),
        "admitted_holds": latency_summary(holds),
        "admitted_payments": latency_summary(payments),
        "admitted_payments_less_provider": latency_summary([ms - PROVIDER_MS for ms in payments]),
    }


def _read(log: Path, offset: int, show_id: str, holds: list[float], payments: list[float]) -> None:
    """Add the ms of the show's holds and of every payment logged after `offset`."""
    with log.open("rb") as lines:
        lines.seek(offset)
        for line in lines:
            entry = _access(line)
            if entry is None or entry.get("method") != "POST":
                continue
            path = str(entry.get("path", ""))
            held = HOLDS.match(path)
            if held and held["show"] == show_id:
                holds.append(float(entry["ms"]))
            elif PAYMENTS.match(path):
                payments.append(float(entry["ms"]))


def _access(line: bytes) -> dict[str, Any] | None:
    """An access-log entry, or None for another log line."""
    if not line.startswith(b"{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:  # a line cut by a concurrent write
        return None
    return entry if isinstance(entry, dict) and entry.get("logger") == "access" else None
