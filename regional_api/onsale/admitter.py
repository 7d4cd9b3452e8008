"""Admit customers from each open waiting room at the rate the region sells at.

Every `TICK` seconds while customers wait (`IDLE_TICK` otherwise, and at the instant of the
next opening), for each open waiting room, the replica that gets the on-sale's admission
lock (the others skip it) takes its row lock, ranks the pre-opening line in random order if
nobody has yet, then admits the next customers in rank order: as many as the pace allows, and
no more than the room (`room`: the parties the free seats make, a quarter more for customers who
leave without buying, never more than the free seats, less the admitted customers who hold
nothing yet, each counted for `IDLE_SECONDS` after its admission). The pace is adaptive: 1.5
times the successful holds per second of the last `PACE_WINDOW` seconds, at least a quarter of
the ceiling, at most the ceiling; its credit lives in the on-sale's row, so the replicas share
one pace. At the opening (nobody admitted yet) the credit is `OPENING_SECONDS` of the ceiling at
once: the first batch is as many customers as the room holds, up to that, instead of a quarter
of the ceiling per second while the first holds come in (and the first ranks that join later,
up to that batch, are admitted as they come).
Whatever the pace and the room, at most `in_flight` admitted customers are on their way to a
hold at once (`REGIONAL_ONSALE_ADMITTED_IN_FLIGHT`, 10; 0: no cap): those admitted in the last
`in_flight_seconds` (5 s) who hold nothing yet. Each has about one request at the stack at a
time, so the cap bounds how many of the admitted customers' requests wait in the router's and
the replicas' lines (Little's law), and admission follows how fast they actually get their holds.
A show with no seat free or held is sold out, and everyone still waiting is told so.
"""

import asyncio
import logging
import math
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge

from common.db import HotPool, fetch, fetch_one, run
from regional_api.clock import Clock
from regional_api.onsale import statements as sql

log = logging.getLogger("onsale.admitter")

# Admission is one step of an admitted customer's path (then the replicas' counters, the
# router's watch, the customer's ask): with 0.5 s it added 0.25 s on average to every admission
# and burst a second's pace in two lumps (`benchmarks/onsale_line.py`, fifth round).
TICK = 0.1
IDLE_TICK = 0.5  # no one waiting in an open room (or this replica skipped it): look less often
OPENING_LATE = 0.005  # wake this much after an opening, so the clock has passed it
# Short, so the pace follows an opening's ramp within a second or two (with 10 s it lagged the
# sales by seconds: `benchmarks/onsale_line.py`'s time to sell out).
PACE_WINDOW = 2
# Admitted customers who never buy: the room admits this many times the free seats' parties.
LEAVERS = 1.25
# The opening's batch: this long at the ceiling, at once. A second's worth (~170 customers)
# sent all its holds into the 16-slot lines within a few hundred ms: half of it halved the
# admitted customers' p99 (holds 0.46-0.63 s, was 0.89-1.18) and admitted none who found no
# seats (was 13-29), for a sell-out 0.6 s later (docs/benchmarks/onsale-line.md, "After the
# merge of the seventh round").
OPENING_SECONDS = 0.5
# An admitted customer holding nothing counts against the room this long after its admission,
# not its whole window: one who left without a word (a closed tab, a leave that was refused)
# kept the room shut for 10 minutes with seats unsold (docs/benchmarks/onsale-line.md, "The large
# variant with a connection per customer").
IDLE_SECONDS = 60.0
# The defaults of `REGIONAL_ONSALE_ADMITTED_IN_FLIGHT` and `..._IN_FLIGHT_SECONDS` (`in_flight_room`):
# with 10 the admitted customers' holds had p99 112-411 ms in the standard rush (median 230; 0.7-2.5
# s without the cap), for a sell-out 2.4-5 s later (docs/benchmarks/onsale-line.md, "Ninth round").
IN_FLIGHT = 10
IN_FLIGHT_SECONDS = 5.0
ADMITTED = Counter("onsale_admitted_total", "Customers admitted from waiting rooms")
SOLD_OUT = Counter("onsale_sold_out_total", "Waiting rooms closed because the show sold out")
WAITING = Gauge("onsale_waiting_customers", "Customers waiting in open waiting rooms")


def pace(*, recent_holds: int, ceiling: float) -> float:
    """Customers to admit per second: adaptive from the holds of the last `PACE_WINDOW` s, capped."""
    return min(ceiling, max(ceiling / 4, 1.5 * recent_holds / PACE_WINDOW))


def room(*, free: int, taken: int, parties: int, idle: int) -> int:
    """Customers who may be admitted now: the free seats' parties and leavers, less the idle.

    The party is the show's average seats per reservation so far, one before any: at the opening
    the room is the free seats, as many customers as could each buy one.
    """
    party = taken / parties if parties else 1.0
    return max(0, min(free, math.ceil(free * LEAVERS / party)) - idle)


def in_flight_room(*, cap: int, in_flight: int) -> int | None:
    """Customers the in-flight cap lets in now: `cap` less those on their way to a hold (None: no cap).

    Those are the admitted customers holding nothing, admitted in the last `in_flight_seconds`:
    each has about one request at the stack at a time, so the cap bounds what admitted customers
    queue for, whatever the pace; the short window keeps a silent one from holding its place.
    """
    return None if cap == 0 else max(0, cap - in_flight)


def credit(*, saved: float, rate: float, elapsed: float | None, opening: float | None) -> float:
    """Customers the pace allows now: what was saved plus the rate since it last ran.

    Unused pace is not saved up beyond a second's worth (no burst after a stall), except at the
    opening, which may admit `opening` customers at once.
    """
    since = TICK if elapsed is None else min(max(elapsed, 0.0), 1.0)
    allowed = min(saved + rate * since, max(rate, 1.0))
    return allowed if opening is None else max(allowed, opening)


def next_tick(*, waiting: int, openings: list[datetime], now: datetime) -> float:
    """Seconds to the next tick: `TICK` while customers wait, else `IDLE_TICK`, or sooner at an
    opening, so the draw and the first batch happen at the opening itself."""
    pause = TICK if waiting else IDLE_TICK
    upcoming = [(at - now).total_seconds() + OPENING_LATE for at in openings if at > now]
    return min([pause, *upcoming])


def _admission(onsale: Any, load: Any, *, waiting: int, cap: int) -> dict[str, Any]:
    """How far to admit (`after`, `through`), at what pace, and the credit left for later."""
    ceiling = float(onsale.max_admit_per_second)
    rate = pace(recent_holds=load.recent_holds, ceiling=ceiling)
    # The first batch is the first ranks, whenever they are in line: at an opening whose early
    # joins were still arriving, the draw ranked a few and the rest came in at a quarter pace.
    batch = ceiling * OPENING_SECONDS - onsale.admitted_through
    opening = batch if batch > 0 else None
    allowed = credit(saved=onsale.admit_credit, rate=rate, elapsed=onsale.elapsed, opening=opening)
    room_for = room(free=load.free, taken=load.taken, parties=load.parties, idle=load.idle_admitted)
    count = min(math.floor(allowed), room_for, waiting)
    if (flight := in_flight_room(cap=cap, in_flight=load.in_flight)) is not None:
        count = min(count, flight)
    return {
        "after": onsale.admitted_through,
        "through": onsale.admitted_through + count,
        "rate": rate,
        "credit": allowed - count if room_for else 0.0,
    }


class Admitter:
    """Admission for every open waiting room."""

    def __init__(
        self,
        pool: HotPool,
        clock: Clock,
        *,
        in_flight: int = 0,
        in_flight_seconds: float = IN_FLIGHT_SECONDS,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.in_flight = in_flight  # admitted customers on their way to a hold, at most (0: any)
        self.in_flight_seconds = in_flight_seconds
        self.pause = IDLE_TICK  # until the next tick, as the last one found the rooms

    async def tick(self) -> int:
        """Admit from every open waiting room once; how many customers were admitted."""
        now = self.clock.now()
        async with self.pool.connection() as conn:
            rows = await fetch(conn, sql.OPEN_ROOMS)
        admitted = 0
        waiting = 0
        for show_id in [row.show_id for row in rows if row.opens_at <= now]:
            done, left = await self._admit(show_id)
            admitted += done
            waiting += left
        WAITING.set(waiting)
        self.pause = next_tick(waiting=waiting, openings=[row.opens_at for row in rows], now=now)
        return admitted

    async def _admit(self, show_id: str) -> tuple[int, int]:
        """Admit for one show under its row lock; (admitted, still waiting)."""
        async with self.pool.connection() as conn, conn.transaction():
            if not (await fetch_one(conn, sql.ADMITTING, {"show_id": show_id})).mine:
                return 0, 0  # another replica is admitting
            onsale = await fetch_one(conn, sql.LOCK_ROOM, {"show_id": show_id})
            if onsale is None:
                return 0, 0  # sold out meanwhile
            # The time is read under the lock: a replica that read it earlier and got the lock
            # after another one would stamp later ranks as admitted first.
            now = self.clock.now()
            next_rank = onsale.next_rank
            if not onsale.shuffled:
                next_rank = (await fetch_one(conn, sql.SHUFFLE, {"show_id": show_id})).ranked
            params = {
                "show_id": show_id,
                "now": now,
                "window": PACE_WINDOW,
                "idle_seconds": IDLE_SECONDS,
                "in_flight_seconds": self.in_flight_seconds,
            }
            load = await fetch_one(conn, sql.ROOM_LOAD, params)
            if load.free == 0 and load.held == 0:
                await run(conn, sql.SOLD_OUT, {"show_id": show_id, "now": now})
                SOLD_OUT.inc()
                log.info("waiting room sold out", extra={"fields": {"show_id": show_id}})
                return 0, 0
            waiting = next_rank - onsale.admitted_through
            params = _admission(onsale, load, waiting=waiting, cap=self.in_flight)
            through = params["through"]
            params |= {"show_id": show_id, "now": now, "window_seconds": onsale.window_seconds}
            done = (await fetch_one(conn, sql.ADMIT, params)).admitted
        ADMITTED.inc(done)
        return int(done), next_rank - through

    async def run_forever(self) -> None:
        """Tick as `next_tick` says, surviving database outages."""
        while True:
            try:
                await self.tick()
            except Exception as exc:  # the database may be down: next tick
                log.warning("admission failed", extra={"fields": {"error": repr(exc)}})
                self.pause = IDLE_TICK
            await asyncio.sleep(self.pause)
