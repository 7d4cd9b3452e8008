"""Faults while traffic runs: a replica killed, a database stopped, global_api and router down."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import psycopg
import pytest
from psycopg import sql

from deploy.local.stack import LocalStack
from harness.pg import PgServer
from harness.procs import metric
from harness.tokens import TestIssuer
from regional_api.config import RegionalSettings
from tests.reliability.checks import assert_acknowledged_present, assert_seats_consistent
from tests.reliability.faults import Fault, Run, run_fault
from tests.reliability.kit import CARD_OK, Arena
from tests.reliability.outage import Call, Outage, run_outage, send
from tests.reliability.report import record

pytestmark = pytest.mark.slow

PAYMENT = {"method": "card", "card_number": CARD_OK}


def _run(stack: LocalStack, minter: TestIssuer, arena: Arena, fault: Fault) -> Run:
    run = asyncio.run(run_fault(stack.router_url, minter, arena, fault))
    record("faults", fault.name, run.summary())
    return run


def _assert_nothing_lost(stack: LocalStack, arena: Arena, run: Run) -> None:
    dsn = stack.dsns["eu-west"]
    assert_seats_consistent(dsn, arena.show_id)
    assert_acknowledged_present(dsn, run.ledger)
    assert 500 not in run.ledger.codes, run.ledger.statuses
    assert run.recover_seconds() is not None, run.summary()


def _bounce(stack: LocalStack, fault: str, name: str, *, kill: bool = False) -> Fault:
    """Take process `name` down (kill -9, or a stop) as `fault`, and start it again to lift it."""

    def down() -> None:
        if kill:
            stack.process(name).kill()
        else:
            stack.process(name).stop()

    def up() -> None:
        stack.restart(name)

    return Fault(fault, inject=down, lift=up)


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
    stack: LocalStack, minter: TestIssuer, new_arena: Callable[..., Arena]
) -> None:
    """kill -9 one eu-west replica: the router fails over to the other one."""
    arena = new_arena(20, 25)
    run = _run(
        stack, minter, arena, _bounce(stack, "kill -9 eu-west-1 replica", "eu-west-1", kill=True)
    )
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
    stack: LocalStack, minter: TestIssuer, new_arena: Callable[..., Arena]
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
    stack: LocalStack, minter: TestIssuer, new_arena: Callable[..., Arena]
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

    fault = _bounce(stack, "stop global_api", "global_api")
    fault.during = login
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


def test_router_restart(
    stack: LocalStack, minter: TestIssuer, new_arena: Callable[..., Arena]
) -> None:
    """Stop the router and start it again: clients see connection errors, then service."""
    arena = new_arena(20, 25)
    run = _run(stack, minter, arena, _bounce(stack, "stop and restart router", "router"))
    _assert_nothing_lost(stack, arena, run)


# A replica answers a show or seat-map read from its cache while the read is younger than this
# (`REGIONAL_SHOW_CACHE_MAX_AGE_MS`, docs/operations.md): so for this long after the stop too.
CACHED_READS = {"show", "seats"}
CACHE_MAX_AGE_S = RegionalSettings.model_fields["show_cache_max_age_ms"].default / 1000


def _assert_refused_fast(outage: Outage, kinds: set[str]) -> None:
    """While down, every answer of every kind is 503 (with `Retry-After`, but /readyz), at once;
    but a read the replica had cached before the stop, within the cache's bound."""
    down = outage.while_down()
    assert {answer.kind for answer in down} == kinds, outage.summary()
    cached_until = outage.t_down + CACHE_MAX_AGE_S
    for answer in down:
        if answer.kind in CACHED_READS and answer.status == 200:
            assert answer.started < cached_until, (answer, outage.summary())
            continue
        assert answer.status == 503, (answer, outage.summary())
        assert answer.seconds < 1.0, (answer, outage.summary())  # the pool timeout is 5 s
        if answer.kind != "readyz":
            assert answer.error == "database_unavailable", answer
            assert answer.retry_after is not None, answer


def test_regional_database_down_answers_at_once(
    stack: LocalStack, minter: TestIssuer, new_arena: Callable[..., Arena]
) -> None:
    """eu-west's PostgreSQL stopped: a replica answers holds, payments and reads 503 at once."""
    arena = new_arena(20, 25)
    server = stack.servers["eu-west"]
    replica = stack.process("eu-west-1")
    pid = replica.pid
    headers = minter.headers("outage-customer")
    setup = asyncio.run(_hold_one(replica.url, headers, arena))
    show = f"/shows/{arena.show_id}"
    workers = [
        [Call("hold", "POST", f"{show}/best-available", {"count": 1}, keyed=True)],
        [Call("pay", "POST", f"/reservations/{setup}/payments", PAYMENT, keyed=True)],
        [Call("show", "GET", show), Call("seats", "GET", f"{show}/seats")],
        [Call("readyz", "GET", "/readyz")],
    ]

    async def booked(session: aiohttp.ClientSession) -> bool:
        fresh = minter.headers()
        hold, body = await send(session, replica.url, fresh, workers[0][0])
        if hold.status != 201:
            return False
        pay = Call("pay", "POST", f"/reservations/{body['id']}/payments", PAYMENT, keyed=True)
        paid, _ = await send(session, replica.url, fresh, pay)
        return paid.status == 201

    outage, recovery = _database_outage(server, replica.url, headers, workers, booked)
    record("outage", "eu-west PostgreSQL stopped", outage.summary() | {"booked_again_s": recovery})
    _assert_refused_fast(outage, {"hold", "pay", "show", "seats", "readyz"})
    assert recovery is not None, "bookings did not succeed again"
    assert replica.pid == pid, "the replica was restarted"
    with httpx.Client(base_url=replica.url, timeout=10.0) as client:
        assert metric(client, "db_breaker_open", service="regional_api") == 0
        assert metric(client, "db_breaker_opened_total", service="regional_api") >= 1
        assert metric(client, "db_breaker_refusals_total", service="regional_api") > 0


def _database_outage(
    server: PgServer,
    base: str,
    headers: dict[str, str],
    workers: list[list[Call]],
    recovered: Callable[[aiohttp.ClientSession], Awaitable[bool]],
) -> tuple[Outage, float | None]:
    """Crash `server` for 3 s while `workers` call `base`; the outage, and when `recovered`."""
    return asyncio.run(
        run_outage(
            base,
            headers,
            workers,
            stop_database=server.kill,  # type: ignore[attr-defined]
            start_database=server.restart,  # type: ignore[attr-defined]
            down_seconds=3.0,
            recovered=recovered,
        )
    )


async def _hold_one(base: str, headers: dict[str, str], arena: Arena) -> str:
    """Hold one seat directly on a replica; the reservation id."""
    async with aiohttp.ClientSession() as session:
        call = Call("hold", "POST", f"/shows/{arena.show_id}/best-available", {"count": 1}, True)
        answer, body = await send(session, base, headers, call)
    assert answer.status == 201, (answer, body)
    return str(body["id"])


def test_global_database_down_answers_at_once(stack: LocalStack, minter: TestIssuer) -> None:
    """The global PostgreSQL stopped: logins and account reads answer 503 at once, then work."""
    server = stack.servers["global"]
    customer = stack.credentials["customer"]
    login = Call("login", "POST", "/auth/login", {k: customer[k] for k in ("email", "password")})
    workers = [[login], [Call("me", "GET", "/users/me")], [Call("readyz", "GET", "/readyz")]]

    async def logged_in(session: aiohttp.ClientSession) -> bool:
        answer, _ = await send(session, stack.global_url, {}, login)
        return answer.status == 200

    outage, recovery = _database_outage(
        server, stack.global_url, minter.headers(), workers, logged_in
    )
    record("outage", "global PostgreSQL stopped", outage.summary() | {"login_again_s": recovery})
    _assert_refused_fast(outage, {"login", "me", "readyz"})
    assert recovery is not None, "logins did not succeed again"
