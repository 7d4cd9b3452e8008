"""The database breaker against a real PostgreSQL server that is stopped and started again."""

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from common.breaker import Breaker, BreakerOpen
from common.db import HotPool, make_breaker, make_pool, pool_engine
from common.errors import DatabaseUnavailable
from common.migrate import upgrade
from common.probe import ProbeConnection
from global_api.config import GlobalSettings
from global_api.main import create_app
from harness.pg import LocalServer, PgServer, create_database, start_server

ROOT = Path(__file__).resolve().parents[2]

# Far below the pool's 5 s connection timeout, yet safe on a loaded machine.
FAST = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A PostgreSQL server of this module's own: the tests stop and start it."""
    started: PgServer = start_server("breaker", durable=False)
    if not isinstance(started, LocalServer):
        started.stop()
        pytest.skip("needs a local server to stop and start")
    try:
        yield started
    finally:
        started.stop()


def _metric(name: str, service: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": service}) or 0.0


async def _until(condition: object, timeout: float = 15.0) -> None:
    """Poll `condition()` until true; fail after `timeout` seconds."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _refused_fast(attempt: object) -> None:
    """`attempt()` is refused by the breaker, well under the pool timeout."""
    assert callable(attempt)
    started = time.monotonic()
    with pytest.raises((DatabaseUnavailable, OperationalError)) as refused:
        await attempt()
    assert time.monotonic() - started < FAST
    error = refused.value
    if isinstance(error, OperationalError):  # the engine's connect, as SQLAlchemy wraps it
        assert isinstance(error.orig, BreakerOpen)
    else:
        assert isinstance(error, DatabaseUnavailable)
        assert error.status == 503
        assert error.headers == {"Retry-After": "1"}


async def _select_1(pool: HotPool) -> None:
    async with pool.connection() as conn:
        await conn.execute(b"SELECT 1")


def test_first_failed_connect_opens_probe_closes(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Pool, the engine on it and probe share one breaker: open on a failed connect, fast, closed."""
    service = "test_breaker"
    caplog.set_level(logging.INFO, logger="db.breaker")

    async def scenario() -> None:
        breaker = make_breaker(server.admin_dsn, service=service, probe_interval=0.2)
        pool = make_pool(server.admin_dsn, service=service, size=3, breaker=breaker)
        engine = pool_engine(pool, server.admin_dsn)
        probe = ProbeConnection(server.admin_dsn, service=service, breaker=breaker)
        await pool.open(wait=True)

        async def engine_select_1() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        try:
            await engine_select_1()
            await probe.ping()
            await asyncio.to_thread(server.kill)

            # The session's stale connection fails it, or is seen closed and given back (no
            # pre-ping); the pool's reconnect fails, which opens the breaker: 503 at once.
            with pytest.raises((OperationalError, DatabaseUnavailable)):
                await engine_select_1()
            await _until(lambda: breaker.is_open)
            assert _metric("db_breaker_open", service) == 1
            refusals = _metric("db_breaker_refusals_total", service)
            for _ in range(5):
                await _refused_fast(engine_select_1)
                await _refused_fast(lambda: _select_1(pool))
                await _refused_fast(probe.ping)
            assert _metric("db_breaker_refusals_total", service) == refusals + 10

            await asyncio.to_thread(server.restart)
            await _until(lambda: not breaker.is_open)
            assert _metric("db_breaker_open", service) == 0
            await engine_select_1()
            await probe.ping()
            await _until_pool_serves(pool)
        finally:
            await breaker.stop()
            await probe.close()
            await pool.close()
            await engine.dispose()

    asyncio.run(scenario())
    changes = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "db.breaker"]
    assert [level for level, _ in changes] == ["WARNING", "INFO"], changes


async def _until_pool_serves(pool: HotPool, timeout: float = 15.0) -> None:
    """Poll the pool until a query succeeds (its reconnection is in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await _select_1(pool)
            return
        except (psycopg.OperationalError, DatabaseUnavailable):
            assert time.monotonic() < deadline, "the pool did not serve again"
            await asyncio.sleep(0.05)


def test_broken_pool_connection_whose_reconnect_fails_opens(server: LocalServer) -> None:
    """Only the hot pool: its broken connection is replaced, the connect fails, it opens."""
    service = "test_breaker_pool"

    async def scenario() -> None:
        breaker = make_breaker(server.admin_dsn, service=service, probe_interval=0.2)
        pool = make_pool(server.admin_dsn, service=service, size=2, breaker=breaker)
        await pool.open(wait=True)
        try:
            await _select_1(pool)
            await asyncio.to_thread(server.kill)
            with pytest.raises((psycopg.OperationalError, DatabaseUnavailable)):
                await _select_1(pool)
            await _until(lambda: breaker.is_open)
            await _refused_fast(lambda: _select_1(pool))
            await asyncio.to_thread(server.restart)
            await _until_pool_serves(pool)
            assert not breaker.is_open
        finally:
            await breaker.stop()
            await pool.close()

    asyncio.run(scenario())


def test_opening_refuses_the_requests_already_waiting(server: LocalServer) -> None:
    """A request queued for a connection when the breaker opens is refused, not left to wait."""

    async def scenario() -> None:
        breaker = make_breaker(server.admin_dsn, service="test_breaker_wait", probe_interval=60)
        pool = make_pool(server.admin_dsn, service="test_breaker_wait", size=1, breaker=breaker)
        await pool.open(wait=True)
        try:
            async with pool.connection():  # the only connection, busy
                waiter = asyncio.create_task(_select_1(pool))
                await _until(lambda: pool.get_stats().get("requests_waiting", 0) == 1)
                breaker.trip(RuntimeError("connect failed"))
                await _refused_fast(lambda: waiter)
                # Refused, not cancelled: the request's task carries on (to answer its 503).
                assert not waiter.cancelled()
                assert waiter.cancelling() == 0
            assert pool.get_stats().get("requests_waiting", 0) == 0
        finally:
            await breaker.stop()
            await pool.close()

    asyncio.run(scenario())


def test_stop_releases_the_pool_while_open(server: LocalServer) -> None:
    """Shutting down while the database is down does not hang on the waiting reconnects."""

    async def scenario() -> None:
        breaker: Breaker = make_breaker(server.admin_dsn, service="test_breaker_stop")
        pool = make_pool(server.admin_dsn, service="test_breaker_stop", size=2, breaker=breaker)
        await pool.open(wait=True)
        await asyncio.to_thread(server.kill)
        try:
            with pytest.raises((psycopg.OperationalError, DatabaseUnavailable)):
                await _select_1(pool)
            await _until(lambda: breaker.is_open)
        finally:
            await breaker.stop()
            started = time.monotonic()
            await pool.close()
            assert time.monotonic() - started < FAST
            await asyncio.to_thread(server.restart)

    asyncio.run(scenario())


def test_global_api_starts_while_its_database_is_still_down(server: LocalServer) -> None:
    """The breaker opens during start-up; start-up keeps retrying and finishes once it is up."""
    dsn = create_database(server.admin_dsn, "global_startup", drop_existing=True)
    upgrade(ROOT / "global_api" / "migrations", dsn)
    with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
        admin.execute("CHECKPOINT")  # the server is non-durable: keep the schema across the crash
    app = create_app(GlobalSettings(database_url=dsn, startup_db_wait_seconds=30))

    async def scenario() -> None:
        await asyncio.to_thread(server.kill)
        lifespan = app.router.lifespan_context(app)
        starting = asyncio.create_task(lifespan.__aenter__())
        await _until(lambda: getattr(app.state, "breaker", None) is not None)
        await _until(lambda: app.state.breaker.is_open)
        assert not starting.done()
        await asyncio.to_thread(server.restart)
        await asyncio.wait_for(starting, timeout=30)
        await lifespan.__aexit__(None, None, None)

    asyncio.run(scenario())
