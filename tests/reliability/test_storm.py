"""Contention storm: many customers race for one show through the router."""

import asyncio
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from deploy.local.stack import LocalStack
from harness.tokens import TestIssuer
from tests.reliability.checks import assert_acknowledged_present, assert_seats_consistent
from tests.reliability.kit import Arena, size
from tests.reliability.report import record
from tests.reliability.traffic import Customer, Ledger, connector_pool

pytestmark = pytest.mark.slow


async def _one_customer(customer: Customer, arena: Arena, rng: random.Random) -> None:
    """Pick seats one of four ways, then pay, release, pay-and-cancel or keep the hold."""
    await customer.look(arena.show_id) if rng.random() < 0.2 else None
    choice = rng.random()
    if choice < 0.4:
        reservation = await customer.hold(arena.show_id, [rng.choice(arena.seat_ids)])
    elif choice < 0.65:
        row = rng.choice(arena.rows)
        start = rng.randrange(0, len(row) - 3)
        reservation = await customer.hold(arena.show_id, row[start : start + rng.randint(2, 4)])
    else:
        reservation = await customer.best(arena.show_id, rng.randint(1, 4))
    if reservation is None:
        return
    then = rng.random()
    if then < 0.6:
        await customer.pay(reservation)
    elif then < 0.8:
        await customer.finish("release", reservation)
    elif then < 0.9 and await customer.pay(reservation):
        await customer.finish("cancel", reservation)


async def _storm(base: str, minter: TestIssuer, arena: Arena, customers: int, seed: int) -> Ledger:
    ledger = Ledger()
    # The connection limit bounds requests in flight; each source address is one "client" to
    # the router's per-client rate limits (20 customers share one, as behind a NAT).
    addresses = max(1, min(customers // 20, size("storm_connections", 32)))
    connectors = connector_pool(addresses, per_address=1)
    sessions = [aiohttp.ClientSession(connector=c) for c in connectors]
    try:
        crowd = [
            Customer(sessions[i % addresses], base, minter.token(f"storm-{seed}-{i}"), ledger)
            for i in range(customers)
        ]
        rngs = [random.Random(seed * 100_003 + i) for i in range(customers)]
        await asyncio.gather(
            *(_one_customer(c, arena, r) for c, r in zip(crowd, rngs, strict=True))
        )
    finally:
        await asyncio.gather(*(session.close() for session in sessions))
    return ledger


def _summary(ledger: Ledger, customers: int, arena: Arena) -> dict[str, Any]:
    return {
        "customers": customers,
        "seats": len(arena.seat_ids),
        "statuses": {
            f"{kind} {outcome}": n for (kind, outcome), n in sorted(ledger.statuses.items())
        },
        "server_errors": {f"{status} {code}": n for (status, code), n in ledger.errors.items()},
        "reservations_acknowledged": len(ledger.reservations),
        "payments_acknowledged": len(ledger.payments),
    }


def test_storm_sells_each_seat_at_most_once(
    stack: LocalStack, minter: TestIssuer, new_arena: Callable[..., Arena]
) -> None:
    """1,000 customers race for 100 seats; the database stays consistent with every answer."""
    arena = new_arena()
    customers = size("storm_customers", 1000)
    ledger = asyncio.run(_storm(stack.router_url, minter, arena, customers, seed=7))

    record("storm", "contention", _summary(ledger, customers, arena))
    assert ledger.server_errors() == {}, ledger.errors
    assert ledger.count("conn_error") == 0, ledger.statuses
    assert ledger.count("429") == 0, ledger.statuses
    # 503s are counted, not forbidden: they are the transient "retry" answer under overload.
    assert all(status == 503 for status, _ in ledger.errors), ledger.errors
    holds = ledger.statuses[("hold", "2xx")] + ledger.statuses[("best", "2xx")]
    assert holds > 0, ledger.statuses
    assert ledger.statuses[("hold", "4xx")] > 0, ledger.statuses
    dsn = stack.dsns["eu-west"]
    counts = assert_seats_consistent(dsn, arena.show_id)
    assert_acknowledged_present(dsn, ledger)
    live = {
        seat
        for acked in ledger.reservations.values()
        if acked.status in ("held", "confirmed")
        for seat in acked.seat_ids
    }
    assert len(live) == counts["sold"] + counts["held"]
    assert counts["sold"] > 0
