"""A bounded line of requests waiting for a slot: first come first served, priority first.

Used wherever work past a cap waits instead of being refused: the router's line in front of a
saturated region (`router/upstreams/send.py`) and a replica's admission control
(`common/observability.py`). Payments and door check-ins stand in a line of their own that is
served first. A freed slot wakes the first waiter; a waiter is refused only when the line is
full or its wait reaches its deadline. A waiter costs a future (and its request, which each user
has already bounded in size).
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LEFT = "left"  # a waiter's result when it was sent out of the line (`Listed`), not woken
Waiter = asyncio.Future[str | None]  # None: woken with a slot; LEFT: sent away


class Listed:
    """Waiters of one kind (a show's joins) that may all be sent out of their lines at once."""

    __slots__ = ("sent_away", "waiters")

    def __init__(self) -> None:
        self.waiters: set[Waiter] = set()
        self.sent_away = False  # those woken but not yet running leave too, and later ones

    def leave(self) -> None:
        """Send every waiter listed out of its line with no slot (`wait` says `left`)."""
        self.sent_away = True
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(LEFT)


class WaitingLine:
    """Two FIFO lines of waiters, priority first; each holds at most `max_waiting`.

    Each line has its own bound, so a full line of browsing never turns a payment away.
    """

    def __init__(self, *, max_waiting: int, unclaimed: Callable[[], None] | None = None) -> None:
        self.max_waiting = max_waiting
        self.lines: tuple[deque[Waiter], ...] = (deque(), deque())
        self._unclaimed = unclaimed  # takes back a slot that nobody waits for

    def __len__(self) -> int:
        return len(self.lines[0]) + len(self.lines[1])

    def ahead_of(self, priority: bool) -> bool:
        """Whether someone waits before a new request of this kind."""
        return bool(self.lines[0]) or (not priority and bool(self.lines[1]))

    async def wait(
        self,
        priority: bool,
        patience: float,
        *,
        front: bool = False,
        listed: Listed | None = None,
    ) -> str | None:
        """Wait to be woken; None when woken, else why not (`full`, `deadline` or `left`).

        `front` puts back a waiter that was woken but lost the slot, ahead of the others. The
        waiter is in `listed` while it waits, for whoever may send it away (`Listed.leave`); one
        woken as they did passes its slot on.
        """
        line = self.lines[0 if priority else 1]
        if not front and len(line) >= self.max_waiting:
            return "full"
        if patience <= 0:
            return "deadline"
        if listed is not None and listed.sent_away:
            return LEFT
        waiter: Waiter = asyncio.get_running_loop().create_future()
        if front:
            line.appendleft(waiter)
        else:
            line.append(waiter)
        if listed is not None:
            listed.waiters.add(waiter)
        try:
            if await asyncio.wait_for(asyncio.shield(waiter), patience) == LEFT:
                self._drop(line, waiter)
                return LEFT
            if listed is not None and listed.sent_away:
                self.hand_on()
                return LEFT
        except (TimeoutError, asyncio.CancelledError) as exc:  # the deadline, or a hang-up
            if waiter.done() and waiter.result() is None:  # woken as the wait ended: pass it on
                self.hand_on()
            else:
                waiter.cancel()
                self._drop(line, waiter)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return "deadline"
        finally:
            if listed is not None:
                listed.waiters.discard(waiter)
        return None

    @staticmethod
    def _drop(line: deque[Waiter], waiter: Waiter) -> None:
        """Take a waiter that was not woken out of its line (`wake` may have skipped it)."""
        with contextlib.suppress(ValueError):
            line.remove(waiter)

    def wake(self) -> bool:
        """A slot came free: hand it to the first waiter (priority line first); False if none."""
        for line in self.lines:
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return True
        return False

    def hand_on(self) -> None:
        """Give a slot to the first waiter, or back to its owner when nobody waits."""
        if not self.wake() and self._unclaimed is not None:
            self._unclaimed()
