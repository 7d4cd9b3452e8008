"""A limit on connections in use at once, with waiters served in arrival order."""

import asyncio
import collections
import contextlib


class Slots:
    """At most `limit` connections in use at once; waiters get freed slots in arrival order."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take_now(self) -> bool:
        """Take a slot if one is free and nobody is queued for it."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as this waiter gave up: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):  # give() may have dropped it already
                    self.waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Free a slot, handing it straight to the first live waiter if there is one."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1
