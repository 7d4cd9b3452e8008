"""The waiting rooms as one replica knows them: read from the database every half second.

The hold path asks the set of waiting-room shows with no database round trip, and a poll of a
customer's place that carries a line ticket is answered from the line's counters here (how far
admission has gone, sold out or not, the pace), so a rush of polls costs the database one read
per replica per `REFRESH_SECONDS` instead of one per poll. An on-sale announced or dropped
takes effect on every replica within that time. The passes' secret is loaded once.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from common.db import Conn, HotPool, fetch, fetch_one
from regional_api.onsale import passes
from regional_api.onsale import statements as sql
from schemas.onsale import LineProgress

log = logging.getLogger("onsale.rooms")

# An admission reaches the router's watch through these counters: read every 0.5 s they added
# 0.25 s on average to each admitted customer's path (`benchmarks/onsale_line.py`, fifth round).
# One statement per replica per reading, whatever the number of customers; this often only while
# customers wait in a line that is open or opens within `SOON_SECONDS`, else every
# `IDLE_REFRESH_SECONDS` (an announced on-sale takes effect within that).
REFRESH_SECONDS = 0.1
IDLE_REFRESH_SECONDS = 0.5
SOON_SECONDS = 1.0
# Older counters are not trusted (the poll reads the database): several readings late, so a
# replica starved of CPU for a moment still answers from memory.
STALE_SECONDS = 1.5
# The rate at which seats go follows a rise at once and a fall slowly (by this share per
# `DECAY_SECONDS`): it bounds how long a waiting customer may sleep, and a rate that lagged an
# opening's ramp let far-back customers sleep through the sell-out.
DECAY = 0.9
DECAY_SECONDS = 0.5


@dataclass(frozen=True)
class Line:
    """One waiting room's counters, as last read."""

    opens_at: datetime
    shuffled: bool
    early_count: int
    next_rank: int
    admitted_through: int
    admit_rate: float
    max_admit_per_second: float
    sold_out: bool
    unsold: int  # seats free or held (a lapsed hold counts as free)
    sell_rate: float  # unsold seats gone per second: the newest reading, or the decayed peak
    read_at: float  # time.monotonic() of the reading
    admitted_mark: int = 0  # how far admission has gone in line numbers (`passes.line_number`)
    in_flight_cap: int = 0  # the admitter's cap on customers on their way to a hold (0: none)

    @property
    def waiting(self) -> int:
        """Customers waiting, not yet admitted."""
        return self.next_rank - self.admitted_through if self.shuffled else self.early_count


def _line(row: Any, before: Line | None, read_at: float, in_flight_cap: int = 0) -> Line:
    """The counters of `row`; the rate at which seats go, from the reading `before`."""
    unsold = int(row.unsold or 0)
    rate = 0.0
    if before is not None and read_at > before.read_at:
        newest = max(0.0, (before.unsold - unsold) / (read_at - before.read_at))
        rate = max(newest, DECAY ** ((read_at - before.read_at) / DECAY_SECONDS) * before.sell_rate)
    return Line(
        opens_at=row.opens_at,
        shuffled=row.shuffled,
        early_count=row.early_count,
        next_rank=row.next_rank,
        admitted_through=row.admitted_through,
        admit_rate=float(row.admit_rate),
        max_admit_per_second=float(row.max_admit_per_second),
        # No seat free or held is sold out: the admitter marks it within a tick, this replica
        # says so at once (the same rule).
        sold_out=row.sold_out_at is not None or unsold == 0,
        unsold=unsold,
        sell_rate=rate,
        read_at=read_at,
        admitted_mark=row.admitted_mark,
        in_flight_cap=in_flight_cap,
    )


def progress(show_id: str, row: Any, *, sold_out: bool) -> LineProgress:
    """The public state of a line from its counters (`row`: a `Line` or the on-sale's row)."""
    if row is None or row.opens_at is None or not getattr(row, "waiting_room", True):
        return LineProgress(show_id=show_id, version="none", waiting_room=False)
    opens = int(row.opens_at.timestamp())
    waiting = row.next_rank - row.admitted_through if row.shuffled else row.early_count
    return LineProgress(
        show_id=show_id,
        # Only what every waiting customer must hear: the opening and the sell-out. Not the
        # draw: each early customer has its number (its draw key) from its join, and a thousand
        # watches answered at once at the opening delayed the first batch's news of its turn.
        version=f"{opens}.{int(sold_out)}",
        waiting_room=True,
        opens_at=row.opens_at,
        drawn=row.shuffled,
        admitted_through=row.admitted_through,
        admitted_mark=row.admitted_mark,
        early_count=row.early_count if row.shuffled else 0,
        line_length=max(0, int(waiting)),
        admit_rate=round(float(row.admit_rate), 2),
        max_admit_per_second=float(row.max_admit_per_second),
        sold_out=sold_out,
    )


async def read_progress(conn: Conn, *, show_id: str, now: datetime) -> LineProgress | None:
    """A line's public state from the database (None: no such show)."""
    row = await fetch_one(conn, sql.ONSALE, {"show_id": show_id, "now": now})
    if row is None:
        return None
    return progress(show_id, row, sold_out=row.sold_out_at is not None)


def next_refresh(lines: dict[str, Line], now: datetime) -> float:
    """Seconds to the next reading: often while customers wait in a line that moves."""
    soon = now + timedelta(seconds=SOON_SECONDS)
    busy = any(
        not line.sold_out and line.waiting > 0 and line.opens_at <= soon for line in lines.values()
    )
    return REFRESH_SECONDS if busy else IDLE_REFRESH_SECONDS


class WaitingRooms:
    """The shows whose holds need an admission pass, their lines' counters, the passes' secret."""

    def __init__(self, *, in_flight_cap: int = 0) -> None:
        self.in_flight_cap = in_flight_cap  # the admitter's, for the waiting customers' estimates
        self.shows: frozenset[str] = frozenset()
        self.lines: dict[str, Line] = {}
        self.secret = b""
        # The draw of each drawn line, read once: the early customers' ranks by customer, so
        # their polls after the opening (a ticket numbered by the draw key) need no database
        # round trip either.
        self.draws: dict[str, dict[str, int]] = {}

    async def load(self, pool: HotPool) -> None:
        """Read the waiting rooms and their counters (and the secret, and draws, once)."""
        async with pool.connection() as conn:
            rows = await fetch(conn, sql.WAITING_ROOMS)
            if not self.secret:
                row = await fetch_one(conn, sql.SECRET)
                self.secret = row.secret.encode()
            draws = {show: drawn for show, drawn in self.draws.items() if show in self.lines}
            for row in rows:
                if row.shuffled and row.show_id not in draws:
                    params = {"show_id": row.show_id, "early": row.early_count}
                    ranked = await fetch(conn, sql.DRAW, params)
                    draws[row.show_id] = {entry.user_id: entry.rank for entry in ranked}
        read_at = time.monotonic()
        cap, before = self.in_flight_cap, self.lines
        self.lines = {
            row.show_id: _line(row, before.get(row.show_id), read_at, cap) for row in rows
        }
        self.shows = frozenset(self.lines)
        self.draws = draws

    def ranked(self, show_id: str, user_id: str, number: int | None) -> int | None:
        """The rank of a ticket's line number: a later arrival's in it, an early one's by the draw.

        None when only the database can say: an unranked (older) ticket, or a draw not read yet.
        """
        if number is None:
            return None
        if number >= passes.LATER:
            return number - passes.LATER
        return self.draws.get(show_id, {}).get(user_id)

    def fresh(self, show_id: str) -> Line | None:
        """A waiting room's counters if they were read recently enough to answer a poll."""
        line = self.lines.get(show_id)
        if line is None or time.monotonic() - line.read_at > STALE_SECONDS:
            return None
        return line

    async def refresh_forever(self, pool: HotPool) -> None:
        """Keep the rooms fresh, surviving database outages."""
        while True:
            try:
                await self.load(pool)
            except Exception as exc:  # the database may be down: keep the last set
                log.warning("waiting rooms not refreshed", extra={"fields": {"error": repr(exc)}})
            await asyncio.sleep(next_refresh(self.lines, datetime.now(UTC)))
