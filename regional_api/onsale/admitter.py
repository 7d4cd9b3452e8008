"""Admit customers from each open waiting room at the rate the region sells at.

Every `TICK` seconds, for each open waiting room, the replica that gets the on-sale's admission
lock (the others skip it) takes its row lock, ranks the pre-opening line in random order if
nobody has yet, then admits the next customers in rank order: as many as the pace allows, never
more than the seats still free for customers who hold nothing yet. The pace is adaptive: 1.5
times the successful holds per second of the last `PACE_WINDOW` seconds, at least a quarter of
the ceiling (so an opening starts briskly), at most the ceiling. A show with no seat free or
held is sold out, and everyone still waiting is told so.
"""

import asyncio
import logging
import math

from prometheus_client import Counter, Gauge

from common.db import HotPool, fetch, fetch_one, run
from regional_api.clock import Clock
from regional_api.onsale import statements as sql

log = logging.getLogger("onsale.admitter")

TICK = 0.5
# Short, so the pace follows an opening's ramp within a second or two (with 10 s it lagged the
# sales by seconds: `benchmarks/onsale_line.py`'s time to sell out).
PACE_WINDOW = 2
ADMITTED = Counter("onsale_admitted_total", "Customers admitted from waiting rooms")
SOLD_OUT = Counter("onsale_sold_out_total", "Waiting rooms closed because the show sold out")
WAITING = Gauge("onsale_waiting_customers", "Customers waiting in open waiting rooms")


def pace(*, recent_holds: int, ceiling: float) -> float:
    """Customers to admit per second: adaptive from the holds of the last `PACE_WINDOW` s, capped."""
    return min(ceiling, max(ceiling / 4, 1.5 * recent_holds / PACE_WINDOW))


class Admitter:
    """Admission for every open waiting room; `credit` carries fractions between ticks."""

    def __init__(self, pool: HotPool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock
        self.credit: dict[str, float] = {}

    async def tick(self) -> int:
        """Admit from every open waiting room once; how many customers were admitted."""
        now = self.clock.now()
        async with self.pool.connection() as conn:
            rooms = [row.show_id for row in await fetch(conn, sql.OPEN_ROOMS, {"now": now})]
        admitted = 0
        waiting = 0
        for show_id in rooms:
            done, left = await self._admit(show_id)
            admitted += done
            waiting += left
        WAITING.set(waiting)
        return admitted

    async def _admit(self, show_id: str) -> tuple[int, int]:
        """Admit for one show under its row lock; (admitted, still waiting)."""
        async with self.pool.connection() as conn, conn.transaction():
            if not (await fetch_one(conn, sql.ADMITTING, {"show_id": show_id})).mine:
                return 0, 0  # another replica is admitting
            room = await fetch_one(conn, sql.LOCK_ROOM, {"show_id": show_id})
            if room is None:
                return 0, 0  # sold out meanwhile
            # The time is read under the lock: a replica that read it earlier and got the lock
            # after another one would stamp later ranks as admitted first.
            now = self.clock.now()
            next_rank = room.next_rank
            if not room.shuffled:
                next_rank = (await fetch_one(conn, sql.SHUFFLE, {"show_id": show_id})).ranked
            params = {"show_id": show_id, "now": now, "window": PACE_WINDOW}
            load = await fetch_one(conn, sql.ROOM_LOAD, params)
            if load.free == 0 and load.held == 0:
                await run(conn, sql.SOLD_OUT, {"show_id": show_id, "now": now})
                SOLD_OUT.inc()
                log.info("waiting room sold out", extra={"fields": {"show_id": show_id}})
                return 0, 0
            rate = pace(recent_holds=load.recent_holds, ceiling=room.max_admit_per_second)
            credit = self.credit.get(show_id, 0.0) + rate * TICK
            room_for = max(0, load.free - load.idle_admitted)
            count = min(math.floor(credit), room_for, next_rank - room.admitted_through)
            # Unused pace is not saved up beyond a second's worth: no burst after a stall.
            self.credit[show_id] = min(credit - count, max(rate, 1.0)) if room_for else 0.0
            through = room.admitted_through + count
            params = {
                "show_id": show_id,
                "now": now,
                "after": room.admitted_through,
                "through": through,
                "rate": rate,
                "window_seconds": room.window_seconds,
            }
            done = (await fetch_one(conn, sql.ADMIT, params)).admitted
        ADMITTED.inc(done)
        return int(done), next_rank - through

    async def run_forever(self) -> None:
        """Tick every `TICK` seconds, surviving database outages."""
        while True:
            try:
                await self.tick()
            except Exception as exc:  # the database may be down: next tick
                log.warning("admission failed", extra={"fields": {"error": repr(exc)}})
            await asyncio.sleep(TICK)
