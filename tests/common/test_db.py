"""The one pool, the sessions on it, pool transactions and the readiness probe connection."""

import asyncio
import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from common.db import (
    fetch_one,
    make_pool,
    make_sessionmaker,
    plain_dsn,
    pool_engine,
    run,
    session_connection,
)
from common.probe import ProbeConnection

# Immutable: a custom plan folds the call with its argument (a notice while planning); a
# generic plan keeps it for execution, and a statement that reads no row never calls it.
FOLDED = """
CREATE FUNCTION pg_temp.folded(n int) RETURNS int IMMUTABLE LANGUAGE plpgsql
AS $$ BEGIN RAISE NOTICE 'folded'; RETURN n; END $$
"""
NO_ROWS = "SELECT x FROM generate_series(1, 0) x WHERE x = pg_temp.folded(%(n)s)"


def _settings(conn: psycopg.AsyncConnection[object]) -> tuple[bool, int | None]:
    return conn.autocommit, conn.prepare_threshold


def test_sessions_borrow_the_pool_connection_and_give_it_back_hot(regional_dsn: str) -> None:
    async def scenario() -> None:
        pool = make_pool(regional_dsn, service="test_db", size=1)
        await pool.open(wait=True)
        engine = pool_engine(pool, regional_dsn)
        try:
            async with pool.connection() as conn:
                hot = conn
                assert _settings(conn) == (True, 0)
            async with make_sessionmaker(engine)() as session:
                mode = await session.scalar(text("SELECT current_setting('plan_cache_mode')"))
                conn = await session_connection(session)
                assert conn is hot  # the pool's one connection, not one of its own
                assert _settings(conn) == (False, None)
                assert mode == "auto"
                await session.commit()
            async with pool.connection() as conn:
                assert conn is hot
                assert _settings(conn) == (True, 0)
                row = await fetch_one(conn, "SELECT current_setting('plan_cache_mode') AS mode")
                assert row.mode == "force_generic_plan"
            assert pool.get_stats()["pool_size"] == 1
        finally:
            await engine.dispose()
            await pool.close()

    asyncio.run(scenario())


def test_session_statements_get_custom_plans_hot_ones_generic(regional_dsn: str) -> None:
    """force_generic_plan also binds unprepared statements: a session's must not keep it."""

    async def scenario() -> None:
        pool = make_pool(regional_dsn, service="test_db", size=1)
        await pool.open(wait=True)
        engine = pool_engine(pool, regional_dsn)
        notices: list[str] = []
        try:
            async with pool.connection() as conn:
                conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
                await run(conn, FOLDED)
                await conn.execute(NO_ROWS, {"n": 1}, prepare=False)
                assert notices == []  # generic: planned without the value
            async with make_sessionmaker(engine)() as session:
                conn = await session_connection(session)
                await run(conn, NO_ROWS, {"n": 1})
                assert notices == ["folded"]  # custom: planned for the value
        finally:
            await engine.dispose()
            await pool.close()

    asyncio.run(scenario())


def test_statements_pass_colons_in_literals_through(regional_dsn: str) -> None:
    """Statements are psycopg's own: only %(name)s is a parameter, never a ':name' in a literal."""

    async def scenario() -> None:
        pool = make_pool(regional_dsn, service="test_db", size=1)
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                query = "SELECT 'show:' || %(show_id)s AS lock_key, 'a:b' AS literal"
                row = await fetch_one(conn, query, {"show_id": "s1"})
            assert (row.lock_key, row.literal) == ("show:s1", "a:b")
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_probe_answers_while_every_pooled_connection_is_taken(regional_dsn: str) -> None:
    async def scenario() -> None:
        pool = make_pool(regional_dsn, service="test_db", size=1)
        await pool.open(wait=True)
        probe = ProbeConnection(regional_dsn, service="test_db")
        try:
            async with pool.connection():  # the pool's only connection, busy
                await asyncio.wait_for(probe.ping(), timeout=2)
        finally:
            await probe.close()
            await pool.close()

    asyncio.run(scenario())


def _kill_connections(dsn: str, application_name: str) -> int:
    """Terminate the server side of every connection of `application_name`, as a crash would."""
    with psycopg.connect(plain_dsn(dsn), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


async def _until_gone(dsn: str, application_name: str, timeout: float = 15.0) -> None:
    """Poll until the server has no backend of `application_name` left (they exit meanwhile)."""
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    while True:
        with psycopg.connect(plain_dsn(dsn), autocommit=True) as admin:
            row = admin.execute(query, (application_name,)).fetchone()
        if row is not None and row[0] == 0:
            return
        assert time.monotonic() < deadline, "the backends did not exit"
        await asyncio.sleep(0.05)


def test_probe_reconnects_after_its_connection_is_killed(regional_dsn: str) -> None:
    recoveries: list[int] = []

    async def scenario() -> None:
        probe = ProbeConnection(
            regional_dsn, service="test_db_probe", on_recovery=lambda: recoveries.append(1)
        )
        try:
            await probe.ping()
            assert _kill_connections(regional_dsn, "test_db_probe") == 1
            with pytest.raises(psycopg.OperationalError):
                await probe.ping()  # the dead connection fails once, and is dropped
            assert recoveries == []
            await probe.ping()
            assert recoveries == [1]  # told once that the database is back
            await probe.ping()
            assert recoveries == [1]
        finally:
            await probe.close()

    asyncio.run(scenario())


def test_one_broken_connection_gets_every_idle_one_replaced(regional_dsn: str) -> None:
    """After a restart each idle connection is broken: only the first request may fail."""

    async def scenario() -> None:
        pool = make_pool(regional_dsn, service="test_db_hot", size=3)
        await pool.open(wait=True)  # two idle connections
        try:
            assert _kill_connections(regional_dsn, "test_db_hot") == 2

            async def select_1() -> None:
                async with pool.connection() as conn:
                    await conn.execute(b"SELECT pg_sleep(0.05)")  # both are taken at once

            with pytest.raises(psycopg.OperationalError):
                await select_1()
            assert pool.checking is not None
            await pool.checking
            await asyncio.gather(select_1(), select_1())
            await asyncio.gather(select_1(), select_1(), select_1())
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_session_gives_its_broken_connection_back_to_be_replaced(regional_dsn: str) -> None:
    """psycopg's close_returns skips a closed connection: ours comes back, so its slot does."""

    async def scenario() -> None:
        pool = make_pool(regional_dsn, service="test_db_lent", size=1, timeout=30)
        await pool.open(wait=True)
        engine = pool_engine(pool, regional_dsn)
        maker = make_sessionmaker(engine)
        try:
            # The backend ends itself mid-statement: the session is sure to hold a broken one
            # (killed from outside, the lend check could see it closed and take another).
            with pytest.raises(OperationalError):
                async with maker() as session:
                    await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            assert pool.checking is not None  # returned broken: the idle ones are checked
            async with maker() as session:  # the pool's one slot was not lost
                assert await session.scalar(text("SELECT 1")) == 1
            assert pool.get_stats()["pool_size"] == 1
        finally:
            await engine.dispose()
            await pool.close()

    asyncio.run(scenario())


def test_a_session_skips_connections_the_server_closed(regional_dsn: str) -> None:
    """Backends terminated while idle (a restart): the next session still gets a live one."""

    async def scenario() -> None:
        pool = make_pool(regional_dsn, service="test_db_closed", size=3, timeout=30)
        await pool.open(wait=True)  # two idle connections
        engine = pool_engine(pool, regional_dsn)
        try:
            assert _kill_connections(regional_dsn, "test_db_closed") == 2
            await _until_gone(regional_dsn, "test_db_closed")
            async with make_sessionmaker(engine)() as session:
                assert await session.scalar(text("SELECT 1")) == 1
        finally:
            await engine.dispose()
            await pool.close()

    asyncio.run(scenario())
