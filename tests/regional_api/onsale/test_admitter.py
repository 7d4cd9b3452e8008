"""The admitter on its own: admission times follow the line whichever replica admits; the
replicas share one pace; the opening admits a first batch; the room
counts the admitted customers who hold nothing, for a while after their admission."""

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from common.db import make_pool
from regional_api.clock import Clock
from regional_api.onsale import admitter, service
from regional_api.onsale.admitter import (
    IDLE_SECONDS,
    IDLE_TICK,
    OPENING_LATE,
    OPENING_SECONDS,
    TICK,
    Admitter,
    credit,
    next_tick,
    pace,
    room,
)
from regional_api.onsale.rooms import Line
from tests.regional_api.factories import grid_rows, query, seed_onsale, seed_show


def line_of(
    dsn: str,
    show_id: str,
    customers: int,
    *,
    admitted: int = 1,
    ceiling: float = 1.0,
    saved: float = 1.0,
    opened_ago: timedelta = timedelta(minutes=1),
) -> None:
    """An on-sale opened a minute ago: `customers` ranked, the first `admitted` of them admitted.

    With `admitted` under a second of the `ceiling` the opening's batch is still going in (by
    default it is over: one customer at one a second); `saved` is the pace's credit left from
    earlier ticks (one customer's by default: a tick of 0.1 s at a quarter of the ceiling earns
    0.025).
    """
    now = datetime.now(UTC)  # the admitted ones just now: they count against the room
    opened = now - opened_ago
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO onsales (show_id, opens_at, max_admit_per_second, shuffled, next_rank,"
            " admitted_through, admit_credit, created_at) VALUES (%s, %s, %s, true, %s, %s, %s, %s)",
            (show_id, opened, ceiling, customers, admitted, saved, opened),
        )
        conn.execute(
            "INSERT INTO line_entries (show_id, user_id, joined_at, rank, admitted_at, expires_at)"
            " SELECT %s, 'user-' || n, %s, n, CASE WHEN n <= %s THEN %s END,"
            " CASE WHEN n <= %s THEN %s END FROM generate_series(1, %s) n",
            (show_id, opened, admitted, now, admitted, opened + timedelta(hours=1), customers),
        )


async def _admit_twice(dsn: str) -> None:
    """One replica whose clock runs a minute ahead admits, then one on time admits."""
    pool = make_pool(dsn, service="test", size=2)
    await pool.open()
    try:
        ahead = Clock()
        ahead.advance(timedelta(minutes=1))
        assert await Admitter(pool, ahead).tick() > 0
        on_time = Admitter(pool, Clock())
        for _ in range(100):  # the shared pace lets it admit within a second or two
            if await on_time.tick() > 0:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the replica on time never admitted")
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
    ranks = [rank for rank, _ in rows]
    assert ranks == list(range(1, len(ranks) + 1))
    assert len(ranks) >= 3  # rank 1 before, then each replica admitted
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


def test_the_opening_admits_a_first_batch_as_large_as_the_room(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)  # 6 seats
    line_of(regional_dsn, show.show_id, customers=20, admitted=0, ceiling=8 / OPENING_SECONDS)
    # Paced from the start, a quarter of the ceiling (2/s) would admit one customer per tick.
    assert asyncio.run(_tick(regional_dsn)) == 6
    assert asyncio.run(_tick(regional_dsn)) == 0  # the room is full: 6 idle customers, 6 seats


def test_the_replicas_share_one_pace(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    line_of(regional_dsn, show.show_id, customers=5, ceiling=2, saved=1.0)  # 0.5/s
    # One replica ticks, then another at once: the second finds the credit spent.
    assert asyncio.run(_tick(regional_dsn)) == 1
    assert asyncio.run(_tick(regional_dsn)) == 0


def test_the_room_counts_parties_and_leavers_never_more_than_the_free_seats() -> None:
    assert room(free=300, taken=0, parties=0, idle=0) == 300  # no hold yet: a seat each
    assert room(free=100, taken=200, parties=100, idle=10) == 63 - 10  # pairs, a quarter more
    assert room(free=6, taken=0, parties=0, idle=6) == 0
    assert room(free=4, taken=10, parties=10, idle=0) == 4  # never past the free seats


def test_the_pace_is_saved_up_to_a_second_and_the_opening_takes_a_second_of_the_ceiling() -> None:
    assert credit(saved=0, rate=25, elapsed=None, opening=100) == 100
    assert credit(saved=0, rate=25, elapsed=None, opening=None) == 25 * TICK  # a tick's worth
    assert credit(saved=50, rate=25, elapsed=1.0, opening=None) == 25  # no burst after a stall
    assert credit(saved=0.5, rate=2, elapsed=-3.0, opening=None) == 0.5  # a clock going back


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


def test_the_customers_of_the_opening_batch_are_told_to_poll_soon() -> None:
    now = datetime.now(UTC)
    line = Line(now - timedelta(seconds=1), True, 0, 2000, 0, 0.0, 100.0, False, 300, 0.0, 0.0)
    front = service.place_from_line(line, show_id="s", rank=20, ticket="t", now=now)
    behind = service.place_from_line(line, show_id="s", rank=400, ticket="t", now=now)
    assert front is not None
    assert behind is not None
    assert (front.estimated_wait_seconds, front.poll_after_seconds) == (0.0, 0.5)
    batch = 100 * OPENING_SECONDS
    assert behind.estimated_wait_seconds == round((400 - batch) / 25, 1)  # past it, 25 a second


def test_with_an_in_flight_cap_the_opening_batch_is_the_cap_in_the_estimates() -> None:
    now = datetime.now(UTC)
    opened = now - timedelta(seconds=1)
    line = Line(opened, True, 0, 2000, 0, 0.0, 100.0, False, 300, 0.0, 0.0, in_flight_cap=10)
    front = service.place_from_line(line, show_id="s", rank=10, ticket="t", now=now)
    past_cap = service.place_from_line(line, show_id="s", rank=30, ticket="t", now=now)
    assert front is not None
    assert past_cap is not None
    assert front.estimated_wait_seconds == 0.0
    # Without the cap rank 30 would be in the opening's batch of 50 and told "no wait".
    assert past_cap.estimated_wait_seconds == round((30 - 10) / 25, 1)


def test_the_admitter_ticks_often_while_customers_wait_and_wakes_at_an_opening() -> None:
    now = datetime.now(UTC)
    assert next_tick(waiting=5, openings=[], now=now) == TICK
    assert next_tick(waiting=0, openings=[now - timedelta(hours=1)], now=now) == IDLE_TICK
    # An opening within the idle tick: the draw and the first batch happen at that instant.
    opening = now + timedelta(seconds=0.2)
    assert next_tick(waiting=0, openings=[opening], now=now) == pytest.approx(0.2 + OPENING_LATE)
    assert TICK <= 0.1 < IDLE_TICK


def test_a_tick_before_an_opening_sleeps_until_it(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    seed_onsale(regional_dsn, show.show_id, datetime.now(UTC) + timedelta(seconds=0.4))

    async def pause() -> float:
        pool = make_pool(regional_dsn, service="test", size=1)
        await pool.open()
        try:
            admitter = Admitter(pool, Clock())
            await admitter.tick()
            return admitter.pause
        finally:
            await pool.close()

    # Before the opening: at most until it; if the machine was slow and it has opened, a tick.
    assert asyncio.run(pause()) <= 0.4 + OPENING_LATE


def test_the_first_batch_admits_its_ranks_as_they_join(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)  # 6 seats
    # The draw found 2 early customers (the rest of the joins were still on their way); 18
    # more have joined since: the batch of 8 goes on, not a quarter of the ceiling a second.
    ceiling = 8 / OPENING_SECONDS
    line_of(regional_dsn, show.show_id, customers=20, admitted=2, ceiling=ceiling, saved=0.0)
    assert asyncio.run(_tick(regional_dsn)) == 4  # the room: 6 seats, 2 admitted holding none


def test_the_opening_admits_a_fraction_of_a_second_at_once_then_the_ceilings_pace(
    regional_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admitter, "OPENING_SECONDS", 0.25)  # the setting, made smaller
    show = seed_show(regional_dsn, rows=grid_rows(rows=10, cols=10, aisle_after=None))
    ceiling = 40.0
    line_of(regional_dsn, show.show_id, 200, admitted=0, ceiling=ceiling, opened_ago=timedelta(0))
    # Not a second of the ceiling (40) at once: their holds would all come within ~0.1 s.
    assert asyncio.run(_tick(regional_dsn)) == int(ceiling * admitter.OPENING_SECONDS) < ceiling


def test_an_admitted_customer_holding_nothing_stops_shutting_the_room_after_a_while(
    regional_dsn: str,
) -> None:
    show = seed_show(regional_dsn)  # 6 seats
    line_of(regional_dsn, show.show_id, customers=20, admitted=6)
    assert asyncio.run(_tick(regional_dsn)) == 0  # 6 admitted holding nothing, 6 seats
    # Admitted longer ago than IDLE_SECONDS (left without a word): the next comes in.
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE line_entries SET admitted_at = now() - make_interval(secs => %s)"
            " WHERE show_id = %s AND rank <= 6",
            (IDLE_SECONDS + 1, show.show_id),
        )
        conn.execute("UPDATE onsales SET admit_credit = 1 WHERE show_id = %s", (show.show_id,))
    assert asyncio.run(_tick(regional_dsn)) == 1


def test_a_customer_who_leaves_frees_the_room_at_the_next_tick(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)  # 6 seats
    line_of(regional_dsn, show.show_id, customers=20, admitted=4, saved=2.0, ceiling=8)
    assert asyncio.run(_tick(regional_dsn)) == 2  # 6 seats, 4 admitted holding nothing
    assert asyncio.run(_tick(regional_dsn)) == 0
    asyncio.run(_leave(regional_dsn, show.show_id, "user-1"))
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute("UPDATE onsales SET admit_credit = 2 WHERE show_id = %s", (show.show_id,))
    assert asyncio.run(_tick(regional_dsn)) == 1  # its place in the room is free at once


async def _leave(dsn: str, show_id: str, user_id: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await service.leave(conn, show_id=show_id, user_id=user_id)
