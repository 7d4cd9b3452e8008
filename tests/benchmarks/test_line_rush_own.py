"""The on-sale rush on `own_http`'s client (line_split) on the real stack.

The benchmark's own stack (router, two replicas, PostgreSQL: real processes on free ports), a
20-seat show's on-sale and 40 customers, each on a connection of its own, or sharing bounded
pools as the large variant's do: every one must end with an outcome, and the router's access
log must hold every hold and payment the generator sent (`router_side`). The stack has two router
instances; the rushes on one process use the first, the split one sends process k to router k.
"""

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import onsale_line
from benchmarks.holds import Hall
from benchmarks.suite import line_rush, line_split, loads, router_side, system
from benchmarks.suite.line_rush import LineRush
from benchmarks.suite.line_split import run_split
from benchmarks.suite.own_http import OwnConnection
from deploy.local.stack import LocalStack

CUSTOMERS = 40
OUTCOMES = {"bought", "told sold out", "admitted, no seats left"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The stack `benchmarks.onsale_line` runs on, with two router instances."""
    running = system.start_stack(progress=lambda _: None, routers=2)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(running.paths.root, ignore_errors=True)


def _line(stack: LocalStack, prefix: str, **options: Any) -> LineRush:
    """40 customers for a fresh 20-seat show whose on-sale opens 3 s from now (`options`: the
    rig's pools, processes and routers)."""
    tokens = system.tokens(stack, CUSTOMERS, prefix)
    hall = system.seed(stack, loads.REGION, rows=2, cols=10, shows=1)
    opens_at = time.time() + 3.0
    onsale_line.announce(stack, hall.show_ids[0], opens_at, ceiling=50)
    time.sleep(1.5)  # every replica refreshes its set of waiting rooms every 0.5 s
    return LineRush(
        stack.router_url, tokens, hall, opens_at, late_spread_s=0.5, patience_s=60, **options
    )


@pytest.fixture(scope="module")
def rush(stack: LocalStack) -> tuple[Hall, int, dict[str, Any]]:
    """A 20-seat show's rush of 40 customers: its hall, the router log's offset, the result."""
    line = _line(stack, "own")
    offset = router_side.log_offset(stack.paths.logs / "router.log")
    return line.hall, offset, run_split(line)


@pytest.fixture(scope="module")
def pooled(stack: LocalStack) -> dict[str, Any]:
    """The same rush with the large variant's shared pools, each far smaller than its customers.

    4 connections for joins, asks and purchases; watches through 3 near the front (the first 5
    positions here) and 4 far back: most requests wait in the generator for a connection.
    """
    line = _line(stack, "pooled", connections=4, watch_connections=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(line_rush, "NEAR_FRONT", 5)  # which customers watch through which pool
        patch.setattr(line_split, "NEAR_FRONT", 3)  # the near-front pool's size
        return run_split(line)


@pytest.fixture(scope="module")
def split(stack: LocalStack) -> tuple[Hall, dict[Path, int], dict[str, Any]]:
    """The rush in two generator processes, process k to router k: hall, log offsets, result."""
    line = _line(stack, "split", connections=4, processes=2, routers=tuple(stack.router_urls))
    logs = [stack.paths.logs / f"{name}.log" for name in system.router_pids(stack)]
    offsets = {log: router_side.log_offset(log) for log in logs}
    return line.hall, offsets, run_split(line)


def _joins(log: Path, offset: int, show_id: str) -> int:
    """Joins (POSTs) of a show's line in one router's access log after `offset`."""
    joined = 0
    with log.open("rb") as lines:
        lines.seek(offset)
        for line in lines:
            entry = json.loads(line) if line.startswith(b"{") else {}
            joined += (entry.get("method"), entry.get("path")) == ("POST", f"/shows/{show_id}/line")
    return joined


def test_each_generator_process_sends_its_customers_to_its_own_router(
    stack: LocalStack, split: tuple[Hall, dict[Path, int], dict[str, Any]]
) -> None:
    hall, offsets, result = split
    assert sum(result["outcomes"].values()) == CUSTOMERS
    assert result["customers_with_5xx"] == 0
    assert (result["generator_processes"], result["routers"]) == (2, 2)
    assert all(files > 0 for files in result["generator_open_files_max_by_process"])
    deadline = time.monotonic() + 10.0
    joins = [_joins(log, offset, hall.show_ids[0]) for log, offset in offsets.items()]
    while sum(joins) < CUSTOMERS and time.monotonic() < deadline:
        time.sleep(0.1)  # the routers write their access logs in batches
        joins = [_joins(log, offset, hall.show_ids[0]) for log, offset in offsets.items()]
    assert joins == [CUSTOMERS // 2, CUSTOMERS // 2]  # each process's 20 customers, one router
    logged = router_side.admitted_requests(offsets, hall.show_ids[0])
    sent = sum(1 for method, *_ in result["writes"] if method == "POST")
    assert (logged["logs"], logged["holds_requests"]) == (2, sent)


def test_every_customer_of_a_small_rush_through_shared_pools_gets_an_outcome(
    pooled: dict[str, Any],
) -> None:
    assert sum(pooled["outcomes"].values()) == CUSTOMERS
    assert set(pooled["outcomes"]) <= OUTCOMES
    assert pooled["seats_sold"] == 20
    assert pooled["customers_with_5xx"] == 0
    assert pooled["outcomes"].get("told sold out", 0) > 0
    assert pooled["statuses"].get("POST 200", 0) >= CUSTOMERS  # every join
    opened = pooled["connections_opened"]
    admitted = CUSTOMERS - pooled["outcomes"].get("told sold out", 0)
    assert opened.get("own", 0) >= admitted  # the admitted buy on their own connections
    assert opened.get("own", 0) < CUSTOMERS  # the rest joined and watched through the pools
    assert opened["shared"] >= 4
    assert opened["near"] + opened["far"] >= 3
    answered = {key.split()[0] for key in pooled["statuses"]}
    assert answered <= {"POST", "GET", "WATCH", "DELETE", "SEATS"}  # no reset or refused socket


def test_every_customer_of_a_small_rush_gets_an_outcome(
    rush: tuple[Hall, int, dict[str, Any]],
) -> None:
    _, _, result = rush
    assert sum(result["outcomes"].values()) == CUSTOMERS
    assert set(result["outcomes"]) <= OUTCOMES
    assert result["seats_sold"] == 20
    assert result["customers_with_5xx"] == 0
    assert result["generator_processes"] == 1
    assert result["generator_loop_lag_ms"]["max_ms"] >= 0  # the loop's lag is measured here too
    assert result["connections_opened"]["own"] >= CUSTOMERS  # no pool: each customer its own
    answered = {key.split()[0] for key in result["statuses"]}
    assert answered <= {"POST", "GET", "WATCH", "DELETE", "SEATS"}  # no reset or refused socket


def test_the_router_log_holds_every_admitted_request(
    stack: LocalStack, rush: tuple[Hall, int, dict[str, Any]]
) -> None:
    hall, offset, result = rush
    sent = sum(1 for method, *_ in result["writes"] if method == "POST")
    log = stack.paths.logs / "router.log"
    bought = result["outcomes"]["bought"]
    deadline = time.monotonic() + 10.0
    logged = router_side.admitted_requests({log: offset}, hall.show_ids[0])
    # The router writes its access log in batches (every 0.25 s): the last payments may be in the
    # next one, after every hold's.
    while logged["holds_requests"] < sent or logged["payments_requests"] < bought:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
        logged = router_side.admitted_requests({log: offset}, hall.show_ids[0])
    assert logged["holds_requests"] == sent
    assert logged["payments_requests"] >= bought
    assert logged["admitted_holds"]["p99_ms"] > 0


async def _watch_then_ask(url: str, show_id: str, token: str) -> tuple[list[int], int]:
    """A sold-out watch (answered `connection: close`), then a request: statuses, connections."""
    conn = OwnConnection(url, timeout=10)
    statuses = []
    try:
        async with conn.request("GET", f"/shows/{show_id}/line/watch?seen=") as answer:
            statuses.append(answer.status)
            assert (await answer.json())["sold_out"]
        auth = {"Authorization": f"Bearer {token}"}
        async with conn.request("GET", f"/shows/{show_id}/line", headers=auth) as answer:
            statuses.append(answer.status)
    finally:
        conn.close()
    return statuses, conn.opened


def test_a_final_watch_answer_closes_and_the_next_request_opens_a_connection(
    stack: LocalStack, rush: tuple[Hall, int, dict[str, Any]]
) -> None:
    hall, _, _ = rush
    token = system.tokens(stack, 1, "after")[0]
    statuses, opened = asyncio.run(_watch_then_ask(stack.router_url, hall.show_ids[0], token))
    assert statuses == [200, 200]
    assert opened == 2
