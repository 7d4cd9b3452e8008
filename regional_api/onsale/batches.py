"""Group commit for joins: the joins of a show that arrive while one batch is in the database
go together, as ONE statement that calls `join_and_place` for each in arrival order.

A lone join goes at once (no timer: the batch is whatever queued by the time its task runs);
while a show's batch is in the database the next joins queue, and go as the next batch, at
most `MOST` in one statement. One batch of a show at a time, so ranks after the opening follow
arrival order on this replica within and across batches. A batch that fails goes again one
statement per customer, so one bad join fails only its own request. The batch runs in a task
of its own: a client that hangs up does not cancel the others' answers. No pooled connection is
taken until the batch goes.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from prometheus_client import Counter, Histogram

from common.db import Conn, HotPool, fetch, fetch_one
from common.errors import DatabaseUnavailable
from regional_api.onsale import statements as sql

log = logging.getLogger("onsale.joins")

MOST = 128  # joins in one statement
JOINS_PER_BATCH = Histogram(
    "onsale_join_batch_size",
    "Joins of a line sent to the database in one statement",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
BATCHES_SPLIT = Counter(
    "onsale_join_batches_split_total",
    "Batches of joins that failed and went again one statement per customer",
)
# A show's batches are keyed by the show and whether the joins came before the opening: a batch
# mixing both would take the draw's row lock (FOR UPDATE) after its early joins' KEY SHARE, and
# two such batches would deadlock (each waiting for the other's KEY SHARE).
Key = tuple[str, bool]


@dataclass
class _Join:
    """One customer's join waiting for its batch's answer."""

    user_id: str
    now: datetime
    answer: "asyncio.Future[Any]" = field(repr=False)

    def settle(self, row: Any = None, error: BaseException | None = None) -> None:
        """Give the waiting request its row or its error (unless it has hung up)."""
        if self.answer.done():
            return
        if error is not None:
            self.answer.set_exception(error)
        else:
            self.answer.set_result(row)


class JoinBatches:
    """The joins of a replica, batched per show (see the module docstring)."""

    def __init__(self, pool: HotPool, most: int = MOST) -> None:
        self.pool = pool
        self.most = most
        self.queued: dict[Key, list[_Join]] = {}
        self.tasks: dict[Key, asyncio.Task[None]] = {}  # the batch of each key in flight

    async def join(self, *, show_id: str, user_id: str, now: datetime, early: bool) -> Any:
        """Join a show's line with the next batch; the row of `join_and_place` (None: no line)."""
        key = (show_id, early)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queued.setdefault(key, []).append(_Join(user_id, now, answer))
        if key not in self.tasks:
            self.tasks[key] = asyncio.create_task(self._drain(key), name="onsale-joins")
        return await answer

    async def _drain(self, key: Key) -> None:
        """Send the key's queued joins, batch after batch, until none is left."""
        try:
            while queue := self.queued.pop(key, None):
                batch, rest = queue[: self.most], queue[self.most :]
                if rest:
                    self.queued[key] = rest
                await self._send(key[0], batch)
        finally:
            del self.tasks[key]
            for waiting in self.queued.pop(key, []):  # cancelled (shutdown): answer them
                waiting.settle(error=DatabaseUnavailable())

    async def _send(self, show_id: str, batch: list[_Join]) -> None:
        """Send one batch on one pooled connection and answer each of its joins."""
        JOINS_PER_BATCH.observe(len(batch))
        try:
            async with self.pool.connection() as conn:
                await self._run(conn, show_id, batch)
        except Exception as exc:  # no connection (breaker open, pool timeout), or it broke
            for each in batch:
                each.settle(error=exc)
        except BaseException:
            for each in batch:
                each.settle(error=DatabaseUnavailable())
            raise

    async def _run(self, conn: Conn, show_id: str, batch: list[_Join]) -> None:
        """One statement for the batch; one per customer, in arrival order, if it fails."""
        params: dict[str, Any] = {
            "show_id": show_id,
            "user_ids": [each.user_id for each in batch],
            "nows": [each.now for each in batch],
        }
        try:
            rows = await fetch(conn, sql.JOIN_MANY, params)
        except psycopg.Error as exc:
            if len(batch) == 1 or conn.broken:
                raise
            BATCHES_SPLIT.inc()
            log.warning(
                "join batch split", extra={"fields": {"joins": len(batch), "error": repr(exc)}}
            )
        else:
            for each, row in zip(batch, rows, strict=True):
                each.settle(row=row)
            return
        for each in batch:
            one = {"show_id": show_id, "user_id": each.user_id, "now": each.now}
            try:
                each.settle(row=await fetch_one(conn, sql.JOIN, one))
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                each.settle(error=exc)


async def get_joins(request: Request) -> JoinBatches:
    """The replica's batches of joins."""
    joins: JoinBatches = request.app.state.joins
    return joins


JoinsDep = Annotated[JoinBatches, Depends(get_joins)]
