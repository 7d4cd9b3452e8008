"""Joins run side by side (migration 0010): none waits for another's commit, ranks stay unique,
and a rank taken before an admission tick but committed after it is admitted by the next."""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg

from common.db import make_pool
from regional_api.clock import Clock
from regional_api.onsale import statements as sql
from regional_api.onsale.admitter import Admitter
from tests.regional_api.factories import query, seed_onsale, seed_show
from tests.regional_api.onsale.test_admitter import line_of

JOIN = "SELECT in_line, rank, early_count, next_rank FROM join_and_place(%s, %s, now())"


def _join(conn: psycopg.Connection, show_id: str, user_id: str) -> tuple[object, ...]:
    row = conn.execute(JOIN, (show_id, user_id)).fetchone()
    assert row is not None
    return tuple(row)


def _join_beside(dsn: str, show_id: str, user_id: str) -> tuple[object, ...]:
    """Join while another join's transaction is open; waiting for its lock fails at once."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '1s'")
        return _join(conn, show_id, user_id)


def test_joins_after_the_opening_do_not_wait_for_each_other(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    line_of(regional_dsn, show.show_id, customers=2, admitted=0)
    with psycopg.connect(regional_dsn) as first:
        assert _join(first, show.show_id, "late-a")[:2] == (True, 3)
        # Before 0010 this waited for the first join's row lock, through its commit.
        assert _join_beside(regional_dsn, show.show_id, "late-b")[:2] == (True, 4)
        first.commit()
    ranks = query(
        regional_dsn,
        "SELECT user_id, rank FROM line_entries WHERE show_id = %s AND rank > 2 ORDER BY rank",
        show.show_id,
    )
    assert ranks == [("late-a", 3), ("late-b", 4)]


def test_joins_before_the_opening_do_not_wait_and_are_counted(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    seed_onsale(regional_dsn, show.show_id, datetime.now(UTC) + timedelta(hours=1))
    with psycopg.connect(regional_dsn) as first:
        assert _join(first, show.show_id, "early-a")[:2] == (True, None)
        assert _join_beside(regional_dsn, show.show_id, "early-b")[:2] == (True, None)
        first.commit()
    with psycopg.connect(regional_dsn, autocommit=True) as again:
        assert _join(again, show.show_id, "early-b") == (True, None, 2, 0)  # counted once each
        place = again.execute(sql.PLACE, {"show_id": show.show_id, "user_id": "x"}).fetchone()
    assert place is not None
    assert place[3] == 2  # early_count: the line's length before the draw


async def _tick(dsn: str) -> int:
    pool = make_pool(dsn, service="test", size=2)
    await pool.open()
    try:
        return await Admitter(pool, Clock()).tick()
    finally:
        await pool.close()


def test_a_rank_committed_after_a_tick_passed_it_is_admitted_next_tick(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    line_of(regional_dsn, show.show_id, customers=2, admitted=1, ceiling=16.0, saved=4.0)
    with psycopg.connect(regional_dsn) as slow:
        assert _join(slow, show.show_id, "slow")[1] == 3  # its number taken, not yet committed
        assert _join_beside(regional_dsn, show.show_id, "quick")[1] == 4
        asyncio.run(_tick(regional_dsn))  # admits through 4: rank 3's row is not visible yet
        slow.commit()
    asyncio.run(_tick(regional_dsn))
    admitted = query(
        regional_dsn,
        "SELECT rank FROM line_entries WHERE show_id = %s AND admitted_at IS NOT NULL ORDER BY 1",
        show.show_id,
    )
    assert [rank for (rank,) in admitted] == [1, 2, 3, 4]
