"""The admitter on its own: admission times follow the line whichever replica admits."""

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import psycopg

from common.db import make_pool
from regional_api.clock import Clock
from regional_api.onsale.admitter import Admitter, pace
from tests.regional_api.factories import query, seed_show


def line_of(dsn: str, show_id: str, customers: int) -> None:
    """An on-sale opened a minute ago whose line holds `customers` ranked customers."""
    opened = datetime.now(UTC) - timedelta(minutes=1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO onsales (show_id, opens_at, max_admit_per_second, shuffled, next_rank,"
            " created_at) VALUES (%s, %s, 8, true, %s, %s)",
            (show_id, opened, customers, opened),
        )
        conn.execute(
            "INSERT INTO line_entries (show_id, user_id, joined_at, rank)"
            " SELECT %s, 'user-' || n, %s, n FROM generate_series(1, %s) n",
            (show_id, opened, customers),
        )


async def _admit_twice(dsn: str) -> None:
    """One replica whose clock runs a minute ahead admits, then one on time admits."""
    pool = make_pool(dsn, service="test", size=2)
    await pool.open()
    try:
        ahead = Clock()
        ahead.advance(timedelta(minutes=1))
        assert await Admitter(pool, ahead).tick() > 0
        assert await Admitter(pool, Clock()).tick() > 0
    finally:
        await pool.close()


def test_admission_times_never_go_back_along_the_line(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    line_of(regional_dsn, show.show_id, customers=5)

    asyncio.run(_admit_twice(regional_dsn))

    rows = query(
        regional_dsn,
        "SELECT rank, admitted_at FROM line_entries WHERE show_id = %s"
        " AND admitted_at IS NOT NULL ORDER BY rank",
        show.show_id,
    )
    assert [rank for rank, _ in rows] == [1, 2]  # a second's pace at least, each tick
    times = [at for _, at in rows]
    assert times == sorted(times), "a later rank was stamped as admitted first"


def test_the_pace_follows_the_last_seconds_of_holds() -> None:
    assert pace(recent_holds=0, ceiling=100) == 25  # an opening starts briskly
    assert pace(recent_holds=60, ceiling=100) == 45  # 1.5 x 30 holds per second
    assert pace(recent_holds=1000, ceiling=100) == 100


async def _tick(dsn: str) -> int:
    pool = make_pool(dsn, service="test", size=1)
    await pool.open()
    try:
        return await Admitter(pool, Clock()).tick()
    finally:
        await pool.close()


def test_a_join_holding_the_row_delays_admission_but_does_not_skip_it(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    line_of(regional_dsn, show.show_id, customers=5)
    with psycopg.connect(regional_dsn) as joining:  # a join in progress holds the row
        joining.execute("SELECT 1 FROM onsales WHERE show_id = %s FOR UPDATE", (show.show_id,))
        release = threading.Timer(0.5, joining.commit)
        release.start()
        admitted = asyncio.run(_tick(regional_dsn))
        release.join()
    assert admitted == 1


def test_another_replica_admitting_is_skipped(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    line_of(regional_dsn, show.show_id, customers=5)
    with psycopg.connect(regional_dsn) as admitting:
        admitting.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('onsale-admit:' || %s, 0))",
            (show.show_id,),
        )
        assert asyncio.run(_tick(regional_dsn)) == 0
    assert asyncio.run(_tick(regional_dsn)) == 1
