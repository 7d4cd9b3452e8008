"""Faults while traffic runs: a replica killed, a database stopped, global_api and router down."""

import asyncio
import time
from collections.abc import Callable

import httpx
import psycopg
import pytest
from psycopg import sql

from deploy.local.stack import LocalStack
from tests.reliability.checks import assert_acknowledged_present, assert_seats_consistent
from tests.reliability.faults import Fault, Run, run_fault
from tests.reliability.kit import Arena, Minter
from tests.reliability.report import record

pytestmark = pytest.mark.slow


def _run(stack: LocalStack, minter: Minter, arena: Arena, fault: Fault) -> Run:
    run = asyncio.run(run_fault(stack.router_url, minter, arena, fault))
    record("faults", fault.name, run.summary())
    return run


def _assert_nothing_lost(stack: LocalStack, arena: Arena, run: Run) -> None:
    dsn = stack.dsns["eu-west"]
    assert_seats_consistent(dsn, arena.show_id)
    assert_acknowledged_present(dsn, run.ledger)
    assert 500 not in run.ledger.codes, run.ledger.statuses
    assert run.recover_seconds() is not None, run.summary()


def _restart(stack: LocalStack, name: str) -> None:
    stack.restart(name)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_ready(urls: list[str], timeout: float = 30.0) -> float:
    start = time.monotonic()
    while not all(_ready(url) for url in urls):
        assert time.monotonic() - start < timeout, f"not ready again: {urls}"
        time.sleep(0.1)
    return round(time.monotonic() - start, 3)


def test_kill_one_regional_replica(
    stack: LocalStack, minter: Minter, new_arena: Callable[..., Arena]
) -> None:
    """kill -9 one eu-west replica: the router fails over to the other one."""
    arena = new_arena(20, 25)
    fault = Fault(
        "kill -9 eu-west-1 replica",
        inject=lambda: stack.process("eu-west-1").kill(),
        lift=lambda: _restart(stack, "eu-west-1"),
    )
    run = _run(stack, minter, arena, fault)
    _assert_nothing_lost(stack, arena, run)
    assert run.failover_seconds() is not None, run.summary()


def _durable_commits(stack: LocalStack, region: str) -> None:
    """Turn synchronous_commit back on for the region's database and reconnect its sessions.

    The suite's stack is non-durable for speed (`synchronous_commit=off`): a crash may then lose
    the last acknowledged commits by design, and the first run of this test showed exactly that.
    """
    server = stack.servers[region]
    database = stack.dsns[region].rsplit("/", 1)[1]
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(
                sql.Identifier(database)
            )
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


def test_stop_and_start_regional_database(
    stack: LocalStack, minter: Minter, new_arena: Callable[..., Arena]
) -> None:
    """Crash eu-west's PostgreSQL and start it again: the pools recover, nothing acked is lost."""
    _durable_commits(stack, "eu-west")
    arena = new_arena(20, 25)
    server = stack.servers["eu-west"]
    replicas = [stack.process(name) for name in ("eu-west-1", "eu-west-2")]
    pids = [proc.pid for proc in replicas]
    fault = Fault(
        "crash eu-west PostgreSQL (immediate stop)",
        inject=server.kill,  # type: ignore[attr-defined]
        lift=server.restart,  # type: ignore[attr-defined]
    )
    run = _run(stack, minter, arena, fault)
    readiness = _wait_ready([proc.url for proc in replicas])
    run.notes["readyz_after_restart_seconds"] = readiness
    record("faults", fault.name, run.summary())
    assert [proc.pid for proc in replicas] == pids, "an API process was restarted"
    _assert_nothing_lost(stack, arena, run)


def test_global_api_down(
    stack: LocalStack, minter: Minter, new_arena: Callable[..., Arena]
) -> None:
    """Stop global_api: bookings go on; logins fail fast with a 5xx, never hang."""
    arena = new_arena(20, 25)
    customer = stack.credentials["customer"]
    logins: list[tuple[int | None, float]] = []

    def login() -> None:
        body = {"email": customer["email"], "password": customer["password"]}
        start = time.monotonic()
        try:
            status: int | None = httpx.post(
                f"{stack.router_url}/auth/login", json=body, timeout=30.0
            ).status_code
        except httpx.HTTPError:
            status = None
        logins.append((status, time.monotonic() - start))

    fault = Fault(
        "stop global_api",
        inject=lambda: stack.process("global_api").stop(),
        lift=lambda: _restart(stack, "global_api"),
        during=login,
    )
    run = _run(stack, minter, arena, fault)
    slowest = max(seconds for _, seconds in logins)
    run.notes["logins_during_fault"] = {
        "statuses": sorted({str(status) for status, _ in logins}),
        "slowest_seconds": round(slowest, 3),
    }
    record("faults", fault.name, run.summary())
    assert logins
    assert all(status is not None and status >= 500 for status, _ in logins), logins
    assert slowest < 5.0, logins
    booking_failures = sum(
        n for (kind, outcome), n in run.ledger.statuses.items()
        if kind in ("best", "pay") and outcome not in ("2xx", "4xx")
    )  # fmt: skip
    assert booking_failures == 0, (run.ledger.statuses, run.ledger.errors)
    _assert_nothing_lost(stack, arena, run)


def test_router_restart(stack: LocalStack, minter: Minter, new_arena: Callable[..., Arena]) -> None:
    """Stop the router and start it again: clients see connection errors, then service."""
    arena = new_arena(20, 25)
    fault = Fault(
        "stop and restart router",
        inject=lambda: stack.process("router").stop(),
        lift=lambda: _restart(stack, "router"),
    )
    run = _run(stack, minter, arena, fault)
    _assert_nothing_lost(stack, arena, run)
