"""The admitter's in-flight cap: at most `in_flight` admitted customers on their way to a hold
(admitted in the last `in_flight_seconds`, holding nothing), whatever the pace and the room, on
any replica; the line's order and the single admission are kept."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import psycopg

from common.db import make_pool
from regional_api.clock import Clock
from regional_api.config import RegionalSettings
from regional_api.onsale.admitter import Admitter, in_flight_room
from tests.regional_api.factories import grid_rows, hold, query, seed_show
from tests.regional_api.onsale.test_admitter import line_of

CAP = 3
WINDOW = 5.0


async def _ticks(dsn: str, caps: list[int]) -> list[int]:
    """One tick of a fresh admitter (a replica) per cap, in turn; how many each admitted."""
    admitted = []
    for cap in caps:
        pool = make_pool(dsn, service="test", size=1)
        await pool.open()
        try:
            admitter = Admitter(pool, Clock(), in_flight=cap, in_flight_seconds=WINDOW)
            admitted.append(await admitter.tick())
        finally:
            await pool.close()
    return admitted


def tick(dsn: str, cap: int = CAP) -> int:
    """One tick with the cap; how many were admitted."""
    return asyncio.run(_ticks(dsn, [cap]))[0]


def admissions(dsn: str, show_id: str) -> list[tuple[Any, ...]]:
    """(rank, admitted_at) of every admitted customer, by rank."""
    return query(
        dsn,
        "SELECT rank, admitted_at FROM line_entries WHERE show_id = %s"
        " AND admitted_at IS NOT NULL ORDER BY rank",
        show_id,
    )


def opened_with_room(dsn: str, customers: int = 40) -> Any:
    """A 100-seat show whose on-sale just opened: the pace (the opening's batch of 50) and the
    room (100 seats) would both admit every waiting customer at once."""
    show = seed_show(dsn, rows=grid_rows(rows=10, cols=10, aisle_after=None))
    line_of(dsn, show.show_id, customers, admitted=0, ceiling=100.0, saved=0.0)
    return show


def test_the_cap_admits_no_more_than_it_allows_while_customers_wait(regional_dsn: str) -> None:
    show = opened_with_room(regional_dsn)
    assert tick(regional_dsn, cap=0) > CAP  # without the cap: the opening's batch at once
    show = opened_with_room(regional_dsn)
    assert tick(regional_dsn) == CAP
    assert tick(regional_dsn) == 0  # 37 still wait, but 3 are on their way to a hold
    assert [rank for rank, _ in admissions(regional_dsn, show.show_id)] == [1, 2, 3]


def test_the_replicas_share_the_cap(regional_dsn: str) -> None:
    show = opened_with_room(regional_dsn)
    # Two replicas in turn: the count is the database's, so together they admit the cap.
    assert asyncio.run(_ticks(regional_dsn, [CAP, CAP, CAP])) == [CAP, 0, 0]
    assert len(admissions(regional_dsn, show.show_id)) == CAP


def test_a_customer_who_holds_lets_the_next_one_in(regional_dsn: str) -> None:
    show = opened_with_room(regional_dsn)
    assert tick(regional_dsn) == CAP
    before = admissions(regional_dsn, show.show_id)
    labels = sorted(show.seats)[:2]
    hold(regional_dsn, show, labels, user_id="user-2", now=datetime.now(UTC))
    assert tick(regional_dsn) == 1  # user-2 holds: one place on the way is free
    assert tick(regional_dsn) == 0
    after = admissions(regional_dsn, show.show_id)
    assert [rank for rank, _ in after] == [1, 2, 3, 4]  # the next in line, in order
    assert after[:CAP] == before  # nobody admitted twice: the first three keep their time


def test_admitted_customers_stop_counting_after_the_short_window(regional_dsn: str) -> None:
    show = opened_with_room(regional_dsn)
    assert tick(regional_dsn) == CAP
    # Admitted longer ago than the window, still holding nothing (slow, or gone silent).
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE line_entries SET admitted_at = now() - make_interval(secs => %s)"
            " WHERE show_id = %s AND admitted_at IS NOT NULL",
            (WINDOW + 1, show.show_id),
        )
    assert tick(regional_dsn) == CAP
    rows = admissions(regional_dsn, show.show_id)
    assert [rank for rank, _ in rows] == list(range(1, 2 * CAP + 1))
    times = [at for _, at in rows]
    assert times == sorted(times), "a later rank was stamped as admitted first"


def test_the_in_flight_room_is_the_cap_less_those_on_their_way() -> None:
    assert in_flight_room(cap=0, in_flight=50) is None  # no cap
    assert in_flight_room(cap=30, in_flight=12) == 18
    assert in_flight_room(cap=30, in_flight=45) == 0  # never negative


def test_the_cap_is_a_setting_with_its_window(monkeypatch: Any) -> None:
    monkeypatch.setenv("REGIONAL_ONSALE_ADMITTED_IN_FLIGHT", "7")
    monkeypatch.setenv("REGIONAL_ONSALE_IN_FLIGHT_SECONDS", "2.5")
    settings = RegionalSettings()
    assert (settings.onsale_admitted_in_flight, settings.onsale_in_flight_seconds) == (7, 2.5)
