"""The line in front of a region whose endpoints are all at their in-flight cap.

A request that finds no free slot waits here, first come first served, instead of being refused:
payments and door check-ins in a line of their own that is served first. A slot freed by an
answer wakes the first waiter. A request is refused with `503 region_overloaded` only when the
line is full or its wait reaches the deadline. A waiter costs a future and its request, whose
body the router has already bounded (`ROUTER_MAX_BODY_BYTES`; booking requests are < 1 kB).
"""

import asyncio
from collections import deque

from prometheus_client import Counter, Gauge, Histogram

LINE_LENGTH = Gauge("router_line_length", "Requests waiting for a slot of the region", ["region"])
LINE_WAITS = Counter(
    "router_line_waits_total",
    "Requests that waited for a slot, by outcome (admitted, deadline, full)",
    ["region", "outcome"],
)
LINE_WAIT_SECONDS = Histogram(
    "router_line_wait_seconds",
    "Time requests waited in the region's line before a slot or refusal",
    ["region"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class WaitingLine:
    """Two FIFO lines of waiters for one region: priority first."""

    def __init__(self, region: str, *, max_waiting: int) -> None:
        self.region = region
        self.max_waiting = max_waiting
        self.lines: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())
        LINE_LENGTH.labels(region).set_function(lambda: float(len(self)))

    def __len__(self) -> int:
        return len(self.lines[0]) + len(self.lines[1])

    def ahead_of(self, priority: bool) -> bool:
        """Whether someone waits before a new request of this kind."""
        return bool(self.lines[0]) or (not priority and bool(self.lines[1]))

    async def wait(self, priority: bool, patience: float, *, front: bool = False) -> str | None:
        """Wait to be woken; None when woken, else why not (`full` or `deadline`).

        `front` puts back a waiter that was woken but lost the slot, ahead of the others.
        """
        line = self.lines[0 if priority else 1]
        if not front and len(self) >= self.max_waiting:
            return "full"
        if patience <= 0:
            return "deadline"
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if front:
            line.appendleft(waiter)
        else:
            line.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), patience)
        except TimeoutError:
            if waiter.done():  # woken as the deadline passed: pass the slot on
                self.wake()
            else:
                waiter.cancel()
                line.remove(waiter)
            return "deadline"
        except asyncio.CancelledError:  # the client went away while waiting
            if waiter.done():
                self.wake()
            else:
                waiter.cancel()
                line.remove(waiter)
            raise
        return None

    def wake(self) -> None:
        """A slot came free: wake the first waiter (priority line first)."""
        for line in self.lines:
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
