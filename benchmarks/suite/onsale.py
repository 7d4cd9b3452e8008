"""Hot on-sale: thousands of customers go for one small show at the same instant."""

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.holds import CARD, Hall
from benchmarks.suite.stats import latency_summary


@dataclass(frozen=True)
class OnSale:
    """One rush: every client holds two seats (its pick, else the best pair left) and pays.

    Like the web client, a customer retries a 502/503 or a dropped connection after the
    `Retry-After` it was given (plus jitter), up to `retries` times, with the same
    `Idempotency-Key`, so a retried hold or payment is never taken twice.
    """

    url: str
    tokens: list[str]
    hall: Hall
    seats_per_client: int = 2
    retries: int = 4
    retry_window_s: float = 30.0  # no retry starts later than this after the rush began


@dataclass
class Tally:
    """What the rush measured, in the generator process."""

    latencies_ms: list[float] = field(default_factory=list)
    customer_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    sold_at: list[float] = field(default_factory=list)
    seats_held: int = 0
    seats_sold: int = 0
    retries: int = 0
    started: float = field(default_factory=time.perf_counter)


RETRIED = {0, 502, 503}


async def _post(
    http: Any, tally: Tally, path: str, body: object, headers: dict[str, str]
) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    try:
        async with http.post(path, json=body, headers=headers) as response:
            status, payload = int(response.status), await response.json()
            retry_after = float(response.headers.get("Retry-After", "1"))
    except Exception as exc:  # a refused or reset connection is an answer too
        tally.statuses[type(exc).__name__] += 1
        return 0, {}, 1.0
    tally.latencies_ms.append((time.perf_counter() - started) * 1000)
    code = payload.get("error") if isinstance(payload, dict) else None
    tally.statuses[f"{status} {code}" if code else str(status)] += 1
    return status, payload, retry_after


async def _call(
    http: Any, rush: OnSale, tally: Tally, path: str, body: object, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """POST with a fresh idempotency key, retried after Retry-After on 502/503/no answer."""
    keyed = headers | {"Idempotency-Key": uuid.uuid4().hex}
    for attempt in range(rush.retries + 1):
        status, payload, retry_after = await _post(http, tally, path, body, keyed)
        late = time.perf_counter() - tally.started > rush.retry_window_s
        if status not in RETRIED or attempt == rush.retries or late:
            break
        tally.retries += 1
        await asyncio.sleep(retry_after + random.random())  # the client's back-off
    return status, payload


async def _customer(http: Any, rush: OnSale, tally: Tally, index: int, start: float) -> None:
    headers = {"Authorization": f"Bearer {rush.tokens[index]}"}
    show_id = rush.hall.show_ids[0]
    pick = rush.hall.pair(random.Random(index))
    status, hold = await _call(
        http, rush, tally, f"/shows/{show_id}/holds", {"seat_ids": pick}, headers
    )
    if status == 409:  # taken: let the server find the best pair still free
        body = {"count": rush.seats_per_client}
        status, hold = await _call(
            http, rush, tally, f"/shows/{show_id}/best-available", body, headers
        )
    if status == 201:
        tally.seats_held += rush.seats_per_client
        path = f"/reservations/{hold['id']}/payments"
        status, _ = await _call(http, rush, tally, path, CARD, headers)
        if status == 201:
            tally.seats_sold += rush.seats_per_client
            tally.sold_at.append(time.perf_counter() - start)
    tally.customer_ms.append((time.perf_counter() - start) * 1000)


async def _rush(rush: OnSale) -> dict[str, Any]:
    import aiohttp

    tally = Tally()
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them under us.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=4)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(rush.url, connector=connector, timeout=timeout) as http:
        start = tally.started = time.perf_counter()
        await asyncio.gather(
            *(_customer(http, rush, tally, i, start) for i in range(len(rush.tokens)))
        )
        elapsed = time.perf_counter() - start
    return result(tally, rush, elapsed)


def result(tally: Tally, rush: OnSale, elapsed: float) -> dict[str, Any]:
    """The rush's figures: sell-out time, conflicts, errors and request latencies."""
    capacity = len(rush.hall.seat_ids)
    conflicts = sum(n for status, n in tally.statuses.items() if status.startswith("409"))
    return {
        "clients": len(rush.tokens),
        "capacity": capacity,
        "seats_held": tally.seats_held,
        "seats_sold": tally.seats_sold,
        "time_to_sell_out_s": round(max(tally.sold_at), 3) if tally.sold_at else None,
        "all_answered_s": round(elapsed, 3),
        "requests": sum(tally.statuses.values()),
        "conflicts": conflicts,
        "errors": sum(tally.statuses.values()) - tally.statuses["201"] - conflicts,
        "retries": tally.retries,
        "statuses": dict(tally.statuses),
        "customer_p99_ms": latency_summary(tally.customer_ms)["p99_ms"],
        **latency_summary(tally.latencies_ms),
    }


def run_rush(rush: OnSale) -> dict[str, Any]:
    """Entry point of the generator process."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_rush(rush))
