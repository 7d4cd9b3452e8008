"""Run one fault under steady background load and measure what the clients saw."""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.tokens import TestIssuer
from tests.reliability.kit import Arena, size
from tests.reliability.traffic import Customer, Ledger

BOOKING = ("best", "pay")


@dataclass
class Fault:
    """A named fault: how to inject it, how to lift it, how long it lasts."""

    name: str
    inject: Callable[[], None]
    lift: Callable[[], None]
    seconds: float = field(default_factory=lambda: float(size("fault_seconds", 3)))
    # Called repeatedly while the fault is active (e.g. try a login); runs in a thread.
    during: Callable[[], None] | None = None


@dataclass
class Run:
    """What happened during one fault."""

    fault: str
    ledger: Ledger
    t_inject: float
    t_lift: float
    t_lifted: float
    t_end: float
    notes: dict[str, Any] = field(default_factory=dict)

    def _first_ok(self, after: float, before: float = float("inf")) -> float | None:
        for t, kind, outcome in self.ledger.events:
            if kind in BOOKING and outcome == "2xx" and after <= t < before:
                return t
        return None

    def failover_seconds(self) -> float | None:
        """From injection until bookings succeed steadily while the fault lasts (0: no failure).

        None: bookings never succeeded again before the fault was lifted (no failover).
        """
        failures = [
            t
            for t, kind, outcome in self.ledger.events
            if kind in BOOKING
            and outcome not in ("2xx", "4xx")
            and self.t_inject <= t < self.t_lift
        ]
        if not failures:
            return 0.0
        ok = self._first_ok(failures[-1], self.t_lift)
        return None if ok is None else round(ok - self.t_inject, 3)

    def recover_seconds(self) -> float | None:
        """From lifting the fault (restart issued) to the first booking answered 2xx."""
        ok = self._first_ok(self.t_lift)
        return None if ok is None else round(max(0.0, ok - self.t_lift), 3)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready row of the reliability table."""
        failed: dict[str, dict[str, int]] = {}
        for (kind, outcome), n in sorted(self.ledger.statuses.items()):
            if outcome not in ("2xx", "4xx"):
                failed.setdefault(kind, {})[outcome] = n
        return {
            "fault": self.fault,
            "fault_seconds": round(self.t_lift - self.t_inject, 2),
            "restart_seconds": round(self.t_lifted - self.t_lift, 2),
            "requests": sum(self.ledger.statuses.values()),
            "ok": self.ledger.count("2xx"),
            "failed_by_kind": failed,
            "failed": {o: self.ledger.count(o) for o in ("conn_error", "503", "5xx", "429")},
            "failover_seconds": self.failover_seconds(),
            "recover_seconds": self.recover_seconds(),
            **self.notes,
        }


async def _booker(
    customer: Customer, arena: Arena, minter: TestIssuer, stop: asyncio.Event
) -> None:
    n = 0
    while not stop.is_set():
        # A new customer every few seats: one customer may hold only so many seats of a show.
        n += 1
        if n % 5 == 0:
            customer.token = minter.token(f"{customer.token[-12:]}-{n}")
        reservation = await customer.best(arena.show_id, 1)
        if reservation is not None:
            await customer.pay(reservation)
        await asyncio.sleep(0.02)


async def _reader(customer: Customer, arena: Arena, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await customer.call("get", "GET", f"/shows/{arena.show_id}")
        await customer.call("get", "GET", "/regions/eu-west/shows?limit=5")
        await asyncio.sleep(0.02)


async def _wait_for_booking(run_ledger: Ledger, after: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(t >= after and k in BOOKING and o == "2xx" for t, k, o in run_ledger.events[-50:]):
            return
        await asyncio.sleep(0.1)


async def run_fault(base: str, minter: TestIssuer, arena: Arena, fault: Fault) -> Run:
    """Start the load, inject, hold, lift, wait for bookings to succeed again, stop the load."""
    ledger, stop = Ledger(), asyncio.Event()
    workers = size("fault_workers", 4)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        customers = [
            Customer(session, base, minter.token(f"fault-{fault.name}-{i}"), ledger, retries=3)
            for i in range(workers * 2)
        ]
        tasks = [asyncio.create_task(_booker(c, arena, minter, stop)) for c in customers[:workers]]
        tasks += [asyncio.create_task(_reader(c, arena, stop)) for c in customers[workers:]]
        await asyncio.sleep(1.0)  # the load is steady before the fault
        t_inject = time.monotonic()
        await asyncio.to_thread(fault.inject)
        until = time.monotonic() + fault.seconds
        while time.monotonic() < until:
            if fault.during is not None:
                await asyncio.to_thread(fault.during)
            await asyncio.sleep(0.25)
        t_lift = time.monotonic()
        await asyncio.to_thread(fault.lift)
        t_lifted = time.monotonic()
        await _wait_for_booking(ledger, t_lift, timeout=30.0)
        await asyncio.sleep(0.5)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks)
    return Run(fault.name, ledger, t_inject, t_lift, t_lifted, time.monotonic())
