"""The psycopg helpers of the hot path: pool transactions and the readiness probe connection."""

import asyncio

import psycopg
import pytest

from common.db import ProbeConnection, fetch_one, make_pool, plain_dsn, pool_transaction, run


def test_pool_transaction_commits_and_rolls_back(regional_dsn: str) -> None:
    async def scenario() -> None:
        pool = make_pool(regional_dsn, service="test_db", size=1)
        await pool.open(wait=True)
        try:
            async for conn in pool_transaction(pool):
                await run(conn, "CREATE TABLE kept (n int)")

            async def failing_write() -> None:
                async for conn in pool_transaction(pool):
                    await run(conn, "CREATE TABLE dropped (n int)")
                    raise RuntimeError("abort")

            with pytest.raises(RuntimeError):
                await failing_write()
            async for conn in pool_transaction(pool):
                row = await fetch_one(
                    conn,
                    "SELECT to_regclass('kept') IS NOT NULL AS kept,"
                    " to_regclass('dropped') IS NULL AS dropped",
                )
                assert row.kept
                assert row.dropped
        finally:
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
