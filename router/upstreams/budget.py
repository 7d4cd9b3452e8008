"""Per-region retry budgets (as in Envoy and Finagle): retries only while they stay a fraction."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter

BUDGET_EXHAUSTED = Counter(
    "router_retry_budget_exhausted_total",
    "Retries refused because the region's retry budget was spent",
    ["region"],
)

_SLOTS = 10


@dataclass(eq=False)
class RetryBudget:
    """Requests and retries of one region over a sliding window of `_SLOTS` slots.

    A retry is allowed while retries in the window stay below `floor + ratio * requests`:
    under a rush every failing request would otherwise turn into several, and the retries
    themselves keep the region overloaded.
    """

    region: str
    ratio: float
    floor: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _requests: list[int] = field(default_factory=lambda: [0] * _SLOTS)
    _retries: list[int] = field(default_factory=lambda: [0] * _SLOTS)
    _slot_start: float = 0.0
    _slot: int = 0

    def _advance(self) -> int:
        width = self.window / _SLOTS
        now = self.clock()
        passed = int((now - self._slot_start) // width)
        if passed > 0:
            for step in range(1, min(passed, _SLOTS) + 1):
                index = (self._slot + step) % _SLOTS
                self._requests[index] = self._retries[index] = 0
            self._slot = (self._slot + passed) % _SLOTS
            self._slot_start += passed * width
        return self._slot

    def request(self) -> None:
        """Count one request sent for the first time."""
        self._requests[self._advance()] += 1

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it; count the refusal otherwise."""
        slot = self._advance()
        if sum(self._retries) >= self.floor + self.ratio * sum(self._requests):
            BUDGET_EXHAUSTED.labels(self.region).inc()
            return False
        self._retries[slot] += 1
        return True
