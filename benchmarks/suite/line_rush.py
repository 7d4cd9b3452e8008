"""The on-sale through its waiting room: every customer queues, is admitted, buys or is told.

Half the customers arrive before the opening (they are ranked at random at the opening), the
rest over the two seconds after it (ranked by arrival). As the seat picker does, each joins,
then holds the router's watch of the line (`router/proxy/watch.py`) and works out its place from
its ticket's line number (an early customer's is its draw key, known from its join); it asks the
region (`GET .../line` with its ticket) only when the watch says admission reached its number,
not at the draw, and stops when the watch says sold out.
Once admitted it holds two seats with its pass (its pick, else the best pair left) and pays.
"""

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.holds import CARD, Hall
from benchmarks.suite.stats import latency_summary
from schemas.onsale import ADMISSION_PASS_HEADER as PASS
from schemas.onsale import LINE_TICKET_HEADER as TICKET

PROVIDER_MS = 300.0  # REGIONAL_PAYMENT_PROVIDER_LATENCY_MS of the stack
NEAR_FRONT = 2000  # positions whose watches do not wait for a shared connection
DRAW_SPREAD_S = 1.0  # as the seat picker spreads an unranked ticket's ask at the draw
LATER = 10**12  # a later arrival's line number is this + its rank (`regional_api/onsale/passes`)
PAY_TRIES = 5
ROUTER_REFUSALS = ("region_overloaded", "region_unavailable")


@dataclass(frozen=True)
class LineRush:
    """One rush through the waiting room of `hall`'s first show, opening `opens_in_s` from now."""

    url: str
    tokens: list[str]
    hall: Hall
    opens_at: float  # time.time() of the opening
    seats_per_client: int = 2
    late_spread_s: float = 2.0
    early_spread_s: float = 0.0  # early customers arrive over this long from the start (0: at once)
    patience_s: float = 180.0  # a customer still in line this long after the opening gives up
    # Connections to the router that the customers share for all but their watches and an
    # admitted customer's purchase (on its own connection), in each
    # generator process `connections // processes` (`own_http.OwnPool`; 0: their own). The
    # requests above it wait in the generator, as behind an edge proxy's bounded pool: 20,000
    # joins sent at the customers' own pace overflowed the router's line ("Large rush").
    connections: int = 0
    # Connections for held watches (0: every customer's own). A process here may open 20,000
    # files: past this many, a customer's watch waits for one that is answered. The customers
    # within NEAR_FRONT of the front always have one (NEAR_FRONT more): a browser has its
    # connection, and one that waits for a pool's would hear its turn late.
    watch_connections: int = 0
    # Generator processes, each with a share of the customers (`line_split`).
    processes: int = 1
    # Router instances: process i sends everything to routers[i % len] (a load balancer with
    # affinity); empty: every process to `url`.
    routers: tuple[str, ...] = ()


@dataclass
class Tally:
    """What the generator measured."""

    hold_ms: list[float] = field(default_factory=list)  # holds and best-available of admitted ones
    pay_ms: list[float] = field(default_factory=list)  # their payments (the provider takes 300 ms)
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    customers_5xx: int = 0
    sold_at: list[float] = field(default_factory=list)
    told_sold_out_at: list[float] = field(default_factory=list)
    told_by_line_at: list[float] = field(default_factory=list)  # a poll answered sold_out
    series: list[dict[str, float]] = field(default_factory=list)
    polls: int = 0
    watches: int = 0
    watches_5xx: int = 0  # watches answered 5xx or not at all (the customer asks the region)
    seats_sold: int = 0
    # Each admitted customer's path, seconds from the opening: asked for the pass, heard it,
    # hold answered, paid (`line_timeline.legs`).
    paths: dict[int, dict[str, float]] = field(default_factory=dict)
    loop_lag_ms: list[float] = field(default_factory=list)  # the generator's own event loop
    # TCP connections the generator opened, by whose: "own" (the customers'), "shared",
    # "near" and "far" (the pools': `line_split._Pools`).
    connections_opened: Counter[str] = field(default_factory=Counter)
    # Every hold, best-available and leave: (method, idempotency key or path, sent at, took s,
    # status, error), `time.time()` seconds: what the end game's customers waited for.
    writes: list[tuple[str, str, float, float, int, str]] = field(default_factory=list)
    # Free seats in the seat map read right after each final "no seats" answer (the map is the
    # replica's cache: at most 250 ms old), and when, in seconds from the opening.
    free_at_refusal: list[tuple[float, int]] = field(default_factory=list)


async def _request(
    http: Any,
    tally: Tally,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    label: str | None = None,
) -> tuple[int, Any, float]:
    started = time.perf_counter()
    try:
        async with http.request(method, path, json=body, headers=headers) as response:
            status = int(response.status)
            payload = await response.json() if status != 204 else {}
    except Exception as exc:  # a refused or reset connection is an answer too
        tally.statuses[type(exc).__name__] += 1
        return 0, {}, 0.0
    took = (time.perf_counter() - started) * 1000
    code = payload.get("error") if isinstance(payload, dict) else None
    if method == "DELETE" or path.endswith(("/holds", "/best-available")):
        sent = time.time() - took / 1000
        what = headers.get("Idempotency-Key", path)
        tally.writes.append((method, what, sent, took / 1000, status, code or ""))
    label = label or method
    tally.statuses[f"{label} {status} {code}" if code else f"{label} {status}"] += 1
    return status, payload, took


def _line_number(ticket: str | None) -> int | None:
    """The line number in a line ticket (`<number>.<signature>`); None before the draw."""
    text = ticket.split(".", 1)[0] if ticket else ""
    return int(text) if text.isdigit() else None


def _mark(state: dict[str, Any]) -> int:
    """How far admission has gone in line numbers (`admitted_through` from an older region)."""
    return int(state.get("admitted_mark", state["admitted_through"]))


def _position(number: int, state: dict[str, Any] | None) -> int | None:
    """A customer's position: a later arrival's exact, an early one's estimated from its key."""
    if state is None or not state["drawn"]:
        return None
    if number >= LATER:
        return number - LATER - int(state["admitted_through"])
    # Keys are uniform below LATER: the key's share of the drawn line is about its rank.
    return max(
        1, round(number / LATER * int(state["early_count"])) - int(state["admitted_through"])
    )


def _until(number: int, state: dict[str, Any] | None) -> int:
    """The line number to be told at: where the wait has halved, else the customer's own."""
    position = _position(number, state)
    if state is None or position is None or position <= 1:
        return number
    if number >= LATER:
        return number - (position - 1) // 2
    return number - max(0, number - _mark(state) - 1) // 2  # halfway in keys


async def _wait_in_line(
    watch: tuple[Any, Any],
    rush: LineRush,
    tally: Tally,
    place: dict[str, Any],
    ticket: str | None,
    seen: str,
) -> tuple[str, str]:
    """Hold watches until the line has news for this customer: (version, "ask" or "sold_out").

    A customer numbered by its ticket (an early one by its draw key) asks nothing at the draw:
    only when admission reached its number.
    """
    path = f"/shows/{rush.hall.show_ids[0]}/line/watch"
    number, state = _line_number(ticket), None
    while time.time() - rush.opens_at <= rush.patience_s:
        query = f"?seen={seen}"
        if number is not None:
            query += f"&until={_until(number, state)}"
        tally.watches += 1
        position = place.get("position")
        if number is not None and state is not None:
            position = _position(number, state)
        near = position is not None and position <= NEAR_FRONT
        status, state, _ = await _request(
            watch[0] if near else watch[1], tally, "GET", path + query, {}, label="WATCH"
        )
        if status != 200:
            tally.watches_5xx += status == 0 or status >= 500
            await asyncio.sleep(1.0)
            return seen, "ask"
        news = seen != "" and state["version"] != seen
        seen = state["version"]
        if state["sold_out"]:
            return seen, "sold_out"
        if not state["waiting_room"]:
            return seen, "ask"
        if number is None:  # an older, unranked ticket: ask for a number at the draw
            if state["drawn"]:
                await asyncio.sleep(random.random() * DRAW_SPREAD_S)
                return seen, "ask"
            if news:
                return seen, "ask"
        elif state["drawn"] and _mark(state) >= number:
            return seen, "ask"
    return seen, "ask"


async def _customer(
    http: Any, watch: Any, buyer: Any, rush: LineRush, tally: Tally, index: int
) -> None:
    """One customer's join, wait and purchase; once admitted it buys on `buyer` (its own
    connection, as its browser's: the shared pools stand for the 20,000 sockets this machine
    cannot open, not for a queue an admitted customer's purchase waits in behind others' joins)."""
    auth = {"Authorization": f"Bearer {rush.tokens[index]}"}
    line = f"/shows/{rush.hall.show_ids[0]}/line"
    late = index % 2 == 1
    if late:
        delay = rush.opens_at - time.time() + random.random() * rush.late_spread_s
    else:
        delay = min(rush.opens_at - time.time() - 1.0, random.random() * rush.early_spread_s)
    await asyncio.sleep(max(0.0, delay))
    saw_5xx = False
    status, place, _ = await _request(http, tally, "POST", line, auth)
    ticket: str | None = None
    seen, asked = "", False
    while True:
        saw_5xx |= status == 0 or status >= 500
        state = place.get("state") if status == 200 else None
        if state in ("admitted", "sold_out"):
            break
        if time.time() - rush.opens_at > rush.patience_s:
            await _request(http, tally, "DELETE", line, auth)
            tally.outcomes["gave up"] += 1
            tally.customers_5xx += saw_5xx
            return
        if status == 200:
            ticket = place.get("line_ticket") or ticket
        elif place.get("error") == "line_ticket_invalid":
            ticket = None
        if status != 200:
            await asyncio.sleep(1.0 + random.random())
        else:
            if asked:  # the watch's replica read the line ahead of the one that answered
                await asyncio.sleep(0.5)
            seen, news = await _wait_in_line(watch, rush, tally, place, ticket, seen)
            if news == "sold_out":
                state = "sold_out"
                break
            asked = True
        tally.polls += 1
        headers = auth | {TICKET: ticket} if ticket else auth
        asked_at = time.time() - rush.opens_at
        status, place, _ = await _request(http, tally, "GET", line, headers)
        if status == 200 and place.get("state") == "admitted":
            tally.paths[index] = {"asked": asked_at, "heard": time.time() - rush.opens_at}
        asked = asked and status == 200 and place.get("state") == "waiting"
        if status == 200 and place.get("state") == "not_in_line":  # the join got no answer
            status, place, _ = await _request(http, tally, "POST", line, auth)
    if state == "sold_out":
        tally.outcomes["told sold out"] += 1
        tally.told_sold_out_at.append(time.time())
        tally.told_by_line_at.append(time.time())
    else:
        bought, failed = await _buy(
            buyer, rush, tally, index, auth | {PASS: place["admission_pass"]}
        )
        saw_5xx |= failed
        tally.outcomes["bought" if bought else "admitted, no seats left"] += 1
        if not bought:  # it left the line (`_buy`'s DELETE): when, for `line_room.end_game`
            tally.told_sold_out_at.append(time.time())
            tally.paths.setdefault(index, {})["left"] = time.time() - rush.opens_at
    tally.customers_5xx += saw_5xx


async def _keyed(
    http: Any, tally: Tally, path: str, headers: dict[str, str], body: Any, key: str
) -> tuple[int, Any, float, bool]:
    """A write with an Idempotency-Key, sent again as the web client does (api.js) after a
    reset connection or a router refusal, at most `PAY_TRIES` times; the last answer, and
    whether any try saw a 5xx or a reset (the customer saw it, even if a retry then won). A
    202 (the payment is still at the provider) is asked again."""
    headers = headers | {"Idempotency-Key": key}
    saw_5xx = False
    for _ in range(PAY_TRIES):
        status, answer, took = await _request(http, tally, "POST", path, headers, body)
        saw_5xx |= status == 0 or status >= 500
        if status == 202:  # a payment still at the provider: ask again for its outcome
            await asyncio.sleep(0.5)
        elif status != 0 and answer.get("error") not in ROUTER_REFUSALS:
            break
        else:
            await asyncio.sleep(1.0)
    return status, answer, took, saw_5xx


async def _buy(
    http: Any, rush: LineRush, tally: Tally, index: int, headers: dict[str, str]
) -> tuple[bool, bool]:
    """Hold a pair and pay, as the web client does (keyed writes); (bought, saw a 5xx)."""
    show_id = rush.hall.show_ids[0]
    pick = {"seat_ids": rush.hall.pair(random.Random(index))}
    path = f"/shows/{show_id}/holds"
    status, hold, took, saw_5xx = await _keyed(http, tally, path, headers, pick, f"hold-{index}")
    tally.hold_ms.append(took)
    # Taken: the best pair left, else one seat rather than nothing (the last seats are singles).
    for count in (rush.seats_per_client, 1):
        if status != 409:
            break
        path = f"/shows/{show_id}/best-available"
        key = f"best-{count}-{index}"
        status, hold, took, failed = await _keyed(http, tally, path, headers, {"count": count}, key)
        tally.hold_ms.append(took)
        saw_5xx |= failed
    if status != 201:
        leave = _request(http, tally, "DELETE", f"/shows/{show_id}/line", headers)
        if status == 409:  # sampled beside the leave, so the leave is not later for it
            await asyncio.gather(_free_seats(http, rush, tally, headers), leave)
        else:
            await leave
        return False, saw_5xx
    path_of = tally.paths.get(index, {})
    path_of["held"] = time.time() - rush.opens_at
    # A held customer pays until the answer is final: an unpaid hold keeps its seats for the
    # hold's 10 minutes, and the line cannot sell out meanwhile.
    path = f"/reservations/{hold['id']}/payments"
    status, _, took, failed = await _keyed(http, tally, path, headers, CARD, f"pay-{index}")
    tally.pay_ms.append(took)
    saw_5xx |= failed
    if status == 201:
        path_of["paid"] = time.time() - rush.opens_at
        tally.sold_at.append(time.time())
        tally.seats_sold += len(hold["seats"])
    return status == 201, saw_5xx


async def _free_seats(http: Any, rush: LineRush, tally: Tally, headers: dict[str, str]) -> None:
    """How many seats the seat map shows free just after a customer was told "no seats"."""
    at = time.time() - rush.opens_at
    path = f"/shows/{rush.hall.show_ids[0]}/seats"
    status, seats, _ = await _request(http, tally, "GET", path, headers, label="SEATS")
    if status == 200:
        tally.free_at_refusal.append((round(at, 3), int(seats["counts"]["free"])))


async def _sample(http: Any, rush: LineRush, tally: Tally, stop: asyncio.Event) -> None:
    """The line's figures every 0.5 s, for the chart."""
    path = f"/shows/{rush.hall.show_ids[0]}/onsale"
    while not stop.is_set():
        try:
            async with http.get(path) as response:
                figures = await response.json()
            tally.series.append(
                {
                    "t": round(time.time() - rush.opens_at, 2),
                    "line_length": figures["line_length"],
                    "admitted": figures["admitted"],
                    "admit_rate": figures["admit_rate"],
                    "sold": figures["sold"],
                }
            )
        except Exception as exc:  # a missed sample is only a gap in the chart
            tally.statuses[f"sample {type(exc).__name__}"] += 1
        await asyncio.sleep(0.5)


async def _lag(tally: Tally, stop: asyncio.Event) -> None:
    """How late the generator's event loop wakes a 50 ms sleep: its own CPU starvation."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        tally.loop_lag_ms.append(1000 * (time.perf_counter() - started - 0.05))


def result(tally: Tally, rush: LineRush) -> dict[str, Any]:
    """The rush's figures against the issue's targets."""
    last_sold = max(tally.sold_at) if tally.sold_at else None
    last_told = max(tally.told_sold_out_at) if tally.told_sold_out_at else None
    return {
        "clients": len(rush.tokens),
        "capacity": len(rush.hall.seat_ids),
        "seats_sold": tally.seats_sold,
        "outcomes": dict(tally.outcomes),
        "customers_with_5xx": tally.customers_5xx,
        "time_to_sell_out_s": round(last_sold - rush.opens_at, 3) if last_sold else None,
        "last_told_after_last_sale_s": (
            round(last_told - last_sold, 3) if last_sold and last_told else None
        ),
        "told_by_the_line_after_last_sale_s": _lags(tally.told_by_line_at, last_sold),
        "polls": tally.polls,
        "watches": tally.watches,
        "watches_5xx": tally.watches_5xx,
        "statuses": dict(tally.statuses),
        "admitted_holds": latency_summary(tally.hold_ms),
        "admitted_payments": latency_summary(tally.pay_ms),
        # The simulated provider answers after PROVIDER_MS: what the platform itself took.
        "admitted_payments_less_provider": latency_summary(
            [ms - PROVIDER_MS for ms in tally.pay_ms]
        ),
        "series": tally.series,
        "paths": tally.paths,
        "writes": tally.writes,
        "generator_loop_lag_ms": latency_summary(tally.loop_lag_ms),
        "connections_opened": dict(tally.connections_opened),
        "no_seats_answers": _no_seats(tally),
    }


def _no_seats(tally: Tally) -> dict[str, Any]:
    """The final "no seats" answers, and how many came while the seat map showed seats free."""
    found = tally.free_at_refusal
    return {
        "sampled": len(found),
        "while_seats_free": sum(1 for _, free in found if free > 0),
        "free_seats_then": [free for _, free in found if free > 0],
        "at_s": [at for at, free in found if free > 0],
    }


def _lags(times: list[float], since: float | None) -> dict[str, float] | None:
    """How long after `since` the customers told sold out by the line heard it (median, 90 %, max)."""
    if since is None or not times:
        return None
    lags = sorted(t - since for t in times)
    pick = {"p50": 0.5, "p90": 0.9}
    at = {name: round(lags[min(len(lags) - 1, int(q * len(lags)))], 3) for name, q in pick.items()}
    return at | {"max": round(lags[-1], 3)}


def install_uvloop() -> None:
    """uvloop's event loop when installed (the generator's CPU is the stack's too)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
