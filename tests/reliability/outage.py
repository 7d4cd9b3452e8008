"""Requests sent straight to one process around a database outage: every answer, timed."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.reliability.traffic import TIMEOUT


@dataclass(frozen=True)
class Call:
    """One request a load worker repeats: a kind for the tally, method, path, JSON body."""

    kind: str
    method: str
    path: str
    json: Any = None
    keyed: bool = False


@dataclass
class Answer:
    """One answer: when its request started, how long it took, what it said."""

    kind: str
    started: float
    seconds: float
    status: int | None
    retry_after: str | None
    error: str | None


@dataclass
class Outage:
    """Every answer of a run, and when the database went down and was started again."""

    answers: list[Answer] = field(default_factory=list)
    t_down: float = 0.0  # the immediate stop had returned
    t_start: float = 0.0  # the start command was issued

    def while_down(self) -> list[Answer]:
        """The answers to requests sent after the stop and answered before the start."""
        return [
            a
            for a in self.answers
            if a.started >= self.t_down and a.started + a.seconds < self.t_start
        ]

    def summary(self) -> dict[str, Any]:
        """Counts by kind and status while down, and the slowest answer then."""
        down = self.while_down()
        tally: dict[str, int] = {}
        for answer in down:
            key = f"{answer.kind} {answer.status} {answer.error}"
            tally[key] = tally.get(key, 0) + 1
        return {
            "down_seconds": round(self.t_start - self.t_down, 2),
            "answers_while_down": tally,
            "slowest_ms_while_down": round(max((a.seconds for a in down), default=0) * 1000, 1),
            "median_ms_while_down": round(_median([a.seconds for a in down]) * 1000, 1),
        }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


async def send(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], call: Call
) -> tuple[Answer, Any]:
    """Send `call` once; its answer and JSON body."""
    sent = dict(headers) | ({"Idempotency-Key": uuid.uuid4().hex} if call.keyed else {})
    started = time.monotonic()
    try:
        async with session.request(
            call.method, base + call.path, json=call.json, headers=sent, timeout=TIMEOUT
        ) as response:
            raw = await response.read()
            status: int | None = response.status
            retry_after = response.headers.get("Retry-After")
    except (aiohttp.ClientError, TimeoutError):
        raw, status, retry_after = b"", None, None
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    return Answer(call.kind, started, time.monotonic() - started, status, retry_after, error), body


async def _worker(
    session: aiohttp.ClientSession,
    base: str,
    headers: dict[str, str],
    calls: list[Call],
    outage: Outage,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        for call in calls:
            answer, _ = await send(session, base, headers, call)
            outage.answers.append(answer)
        await asyncio.sleep(0.01)


async def run_outage(
    base: str,
    headers: dict[str, str],
    workers: list[list[Call]],
    *,
    stop_database: Callable[[], None],
    start_database: Callable[[], None],
    down_seconds: float,
    recovered: Callable[[aiohttp.ClientSession], Awaitable[bool]],
    recover_timeout: float = 30.0,
) -> tuple[Outage, float | None]:
    """Load `base`, stop its database, hold, start it; seconds from start until `recovered`."""
    outage, stop = Outage(), asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        tasks = [
            asyncio.create_task(_worker(session, base, headers, calls, outage, stop))
            for calls in workers
        ]
        try:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(stop_database)
            outage.t_down = time.monotonic()
            await asyncio.sleep(down_seconds)
            outage.t_start = time.monotonic()
            await asyncio.to_thread(start_database)
            recovery = await _until_recovered(session, recovered, outage.t_start, recover_timeout)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks)
    return outage, recovery


async def _until_recovered(
    session: aiohttp.ClientSession,
    recovered: Callable[[aiohttp.ClientSession], Awaitable[bool]],
    since: float,
    timeout: float,
) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await recovered(session):
            return round(time.monotonic() - since, 3)
        await asyncio.sleep(0.05)
    return None
