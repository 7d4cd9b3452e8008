"""The waiting room as the admitter sees it, sampled through a rush: what holds the end game.

A thread reads the admitter's own figures (`ROOM_LOAD`, the room by `admitter.room`, how far
admission went and who waits) every `EVERY_S` from the region's database, one statement each,
while the rush runs. `end_game` then says, at the samples where seats were free, customers
waited and the room admitted nobody, who the "idle" admitted customers were, from the
generator's per-customer path: still on their way to their pass, holding a pass with their
holds in flight, or done (left) but still counted. "Stalled": seats free, none even held, and
the room shut.
"""

import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row

from regional_api.config import RegionalSettings
from regional_api.onsale import admitter
from regional_api.onsale import statements as sql
from regional_api.onsale.admitter import PACE_WINDOW, room

EVERY_S = 0.1
# The replicas' window of the in-flight count: the stack's processes read the same environment.
IN_FLIGHT_SECONDS = RegionalSettings().onsale_in_flight_seconds
LINE = "SELECT admitted_through FROM onsales WHERE show_id = %(show_id)s"
# The customers admitted so far (a few hundred): a customer who leaves deletes its entry, so the
# admission times of those who left are kept from these readings.
ADMITTED = """
SELECT user_id, extract(epoch FROM admitted_at)::float8 AS at FROM line_entries
WHERE show_id = %(show_id)s AND admitted_at IS NOT NULL
"""


def _sample(conn: Any, show_id: str, opens_at: float, admitted: dict[str, float]) -> dict[str, Any]:
    """One reading of the room's figures, `t` in seconds from the opening (and who came in)."""
    now = datetime.now(UTC)
    # `IDLE_SECONDS` is this branch's (seventh round); a tree without it ignores the parameter.
    idle_seconds = getattr(admitter, "IDLE_SECONDS", 600.0)
    params = {
        "show_id": show_id,
        "now": now,
        "window": PACE_WINDOW,
        "idle_seconds": idle_seconds,
        "in_flight_seconds": IN_FLIGHT_SECONDS,
    }
    load = conn.execute(sql.ROOM_LOAD, params).fetchone()
    line = conn.execute(LINE, params).fetchone()
    for row in conn.execute(ADMITTED, params).fetchall():
        admitted.setdefault(row.user_id, row.at - opens_at)
    conn.commit()
    return {
        "t": round(now.timestamp() - opens_at, 3),
        "free": load.free,
        "held": load.held,
        "parties": load.parties,
        "idle": load.idle_admitted,
        "in_flight": load.in_flight,
        "room": room(
            free=load.free, taken=load.taken, parties=load.parties, idle=load.idle_admitted
        ),
        "admitted_through": line.admitted_through,
    }


class RoomSampler:
    """Samples the room in a thread from `start()` to `stop()`."""

    def __init__(self, dsn: str, show_id: str, opens_at: float) -> None:
        self.dsn, self.show_id, self.opens_at = dsn, show_id, opens_at
        self.samples: list[dict[str, Any]] = []
        self.admitted: dict[str, float] = {}  # every customer admitted, left or not: seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Begin sampling (until `stop`)."""
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        """Stop sampling; the samples."""
        self._stop.set()
        self._thread.join()
        return self.samples

    def _run(self) -> None:
        with psycopg.connect(self.dsn, row_factory=namedtuple_row) as conn:
            while not self._stop.is_set():
                if time.time() >= self.opens_at - EVERY_S:
                    self.samples.append(_sample(conn, self.show_id, self.opens_at, self.admitted))
                self._stop.wait(EVERY_S)


def _idle_kinds(
    t: float,
    admitted: dict[str, float],
    found: dict[str, dict[str, float]],
    paths: dict[str, dict[str, float]],
) -> dict[str, int]:
    """The admitted customers holding nothing at `t`, by where they were on their path."""
    kinds = {"before the pass": 0, "pass heard, holds in flight": 0, "left": 0}
    for user, at in admitted.items():
        held = found["held"].get(user)
        if at > t or (held is not None and held <= t):
            continue
        path = paths.get(user, {})
        if path.get("left", t + 1) <= t:
            kinds["left"] += 1
        elif path.get("heard", t + 1) <= t:
            kinds["pass heard, holds in flight"] += 1
        else:
            kinds["before the pass"] += 1
    return kinds


def end_game(
    samples: list[dict[str, Any]],
    admitted: dict[str, float],
    found: dict[str, dict[str, float]],
    paths: dict[str, dict[str, float]],
    last_sale: float | None,
) -> dict[str, Any]:
    """Seconds the room was shut with seats free (and of those, stalled: no seat even held), and
    who was idle at the first stalled reading (else the last shut one)."""
    shut = [s for s in samples if s["free"] > 0 and s["room"] == 0 and s["t"] >= 0]
    if last_sale is not None:
        shut = [s for s in shut if s["t"] <= last_sale]
    stalled = [s for s in shut if s["held"] == 0]
    summary: dict[str, Any] = {
        "shut_s": round(EVERY_S * len(shut), 1),
        "stalled_s": round(EVERY_S * len(stalled), 1),
    }
    at = stalled[0] if stalled else (shut[-1] if shut else None)
    if at is not None:
        kinds = _idle_kinds(at["t"], admitted, found, paths)
        summary["stalled" if stalled else "last shut"] = at | {"idle by path": kinds}
    left = sorted(path["left"] for path in paths.values() if "left" in path)
    if left:  # customers admitted who found nothing: when they left (s from the opening)
        summary["left_s"] = {"first": round(left[0], 2), "p50": round(left[len(left) // 2], 2)}
    return summary
