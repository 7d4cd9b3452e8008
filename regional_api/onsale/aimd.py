"""An in-flight cap that follows the machine: AIMD on the admitter's K from this replica's holds.

The replica's observability middleware already times every answer; `HoldLatency.observe` is
its hook, and keeps the server-side times of the last `HOLD_SAMPLES` hold answers (`POST` of a
show's holds or best available) within `LATENCY_SECONDS`. Each tick in which the replica admits
for a room, `Aimd.adjust` halves K when their p90 is over the target (not below the floor, at
most once per window, so a cut is not cut again for the slow holds that caused it) and adds one
when it is under the target and the cap was what limited admission (up to the ceiling).
"""

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Gauge

# The answers that are an admitted customer's way to its seats (route templates, as timed).
HOLD_ROUTES = frozenset({"/shows/{show_id}/holds", "/shows/{show_id}/best-available"})
LATENCY_SECONDS = 1.0  # the window: a second of holds, as fast as the joins come and go
HOLD_SAMPLES = 200  # at most this many of them (bounded memory; 200 holds/s is past the rush's)
MIN_SAMPLES = 5  # fewer answers than this in the window tell nothing: K stays
CAP = Gauge("onsale_in_flight_cap", "Admitted customers on their way to a hold, at most (K)")
HOLD_P90 = Gauge(
    "onsale_hold_latency_p90_seconds", "p90 of this replica's hold answers in the AIMD window"
)


class HoldLatency:
    """Server-side times of this replica's recent hold answers (the middleware's, not a timer)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.answers: deque[tuple[float, float]] = deque(maxlen=HOLD_SAMPLES)

    def observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        """Keep one answer's time if it is a hold's (the observability middleware's hook)."""
        if method == "POST" and route in HOLD_ROUTES:
            self.answers.append((self.now(), elapsed))

    def p90(self) -> float | None:
        """The p90 of the answers within the window, in seconds (None: too few to tell)."""
        since = self.now() - LATENCY_SECONDS
        while self.answers and self.answers[0][0] < since:
            self.answers.popleft()
        if len(self.answers) < MIN_SAMPLES:
            return None
        times = sorted(elapsed for _, elapsed in self.answers)
        return times[math.ceil(0.9 * len(times)) - 1]


@dataclass
class Aimd:
    """How K moves: halved over the target (once per window), one more under it when it bound."""

    latency: HoldLatency
    target: float  # seconds, the holds' p90 above which K halves
    floor: int
    ceiling: int
    cut_at: float = field(default=-math.inf)  # when K was last halved (the latency's clock)

    def adjust(self, k: int, *, bound: bool) -> int:
        """The next K from the current one, given whether the cap limited this tick's admission."""
        p90 = self.latency.p90()
        HOLD_P90.set(math.nan if p90 is None else p90)
        now = self.latency.now()
        if p90 is None:
            nxt = k
        elif p90 > self.target:
            cut = now - self.cut_at >= LATENCY_SECONDS
            nxt = max(self.floor, k // 2) if cut else k
            self.cut_at = now if cut else self.cut_at
        else:
            nxt = min(self.ceiling, k + 1) if bound else k
        nxt = min(self.ceiling, max(self.floor, nxt))
        CAP.set(nxt)
        return nxt
