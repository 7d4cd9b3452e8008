"""Claims that meet a claim in flight: refused at once, never queued behind its commit; a burst
of best-available requests spreads over the free blocks (migration 0012, `holds.py`)."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from regional_api.idempotency.service import Key, Stored
from regional_api.reservations import statements as sql
from regional_api.reservations.errors import SeatsTaken
from regional_api.reservations.holds import Terms, place_best_available, place_hold
from tests.regional_api.factories import ShowSeed, place, query, seed_show

TTL = timedelta(minutes=10)
DID_NOT_BLOCK_S = 20  # generous: the claim answers in milliseconds unless it waits for a lock
PAIRS = ("AA_AA_AA_AA",) * 3  # twelve blocks of two, each between aisles: no other pair exists
CLAIM = "SELECT won FROM claim_seats(%s, %s, %s, %s, NULL, 'online', %s, %s, 6)"


@pytest.fixture
def show(regional_dsn: str) -> ShowSeed:
    return seed_show(regional_dsn)


def _claim_in_open_transaction(
    conn: psycopg.Connection, show: ShowSeed, seat_ids: list[int], now: datetime
) -> list[bool]:
    """Call claim_seats in `conn`'s transaction and leave it open (its row locks held)."""
    rid = f"res-eu-west-open{seat_ids[0]}"
    rows = conn.execute(CLAIM, (show.show_id, seat_ids, rid, "first", now, now + TTL)).fetchall()
    return [won for (won,) in rows]


def _place_elsewhere(
    regional_dsn: str,
    show: ShowSeed,
    labels: list[str],
    now: datetime,
    *,
    open_: psycopg.Connection,
) -> object:
    """Hold `labels` for another customer as the hold endpoint does, while `open_`'s transaction
    stays open; fail if the hold waits for that transaction instead of answering."""
    pool = ThreadPoolExecutor(max_workers=1)
    answer = pool.submit(_place_or_refusal, regional_dsn, show.show_id, show.ids(*labels), now)
    try:
        return answer.result(timeout=DID_NOT_BLOCK_S)
    except TimeoutError:
        open_.rollback()  # let the waiting claim go, then fail
        raise AssertionError("the claim waited for the other claim's transaction") from None
    finally:
        pool.shutdown()


def _place_or_refusal(dsn: str, show_id: str, seat_ids: list[int], now: datetime) -> object:
    try:
        return place(dsn, show_id=show_id, seat_ids=seat_ids, user_id="second", now=now, ttl=TTL)
    except SeatsTaken as refusal:
        return refusal


def test_a_claim_meeting_a_claim_in_flight_is_refused_without_waiting_for_it(
    regional_dsn: str, show: ShowSeed
) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(regional_dsn) as first:
        assert _claim_in_open_transaction(first, show, show.ids("A1", "A2"), now) == [True, True]

        answer = _place_elsewhere(regional_dsn, show, ["A2", "A3"], now, open_=first)

        assert isinstance(answer, SeatsTaken)  # answered while the first is still open
        assert first.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        first.rollback()
    # The first claim never committed: the seats it had were never taken.
    held = _place_or_refusal(regional_dsn, show.show_id, show.ids("A2", "A3"), now)
    assert not isinstance(held, SeatsTaken)


def test_a_claim_bound_to_be_refused_locks_none_of_its_free_seats(
    regional_dsn: str, show: ShowSeed
) -> None:
    now = datetime.now(UTC)
    place(
        regional_dsn, show_id=show.show_id, seat_ids=show.ids("A1"), user_id="u", now=now, ttl=TTL
    )
    with psycopg.connect(regional_dsn) as first:
        # A1 is taken, so this claim is refused; A2 is free and must stay claimable meanwhile.
        assert _claim_in_open_transaction(first, show, show.ids("A1", "A2"), now) == [False, False]

        answer = _place_elsewhere(regional_dsn, show, ["A2"], now, open_=first)

        assert not isinstance(answer, SeatsTaken), answer
        assert first.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS


def test_as_many_concurrent_best_available_requests_as_free_blocks_all_get_one(
    regional_dsn: str,
) -> None:
    show = seed_show(regional_dsn, rows=PAIRS)
    blocks = len(show.seats) // 2
    now = datetime.now(UTC)

    async def one(customer: int) -> list[int]:
        terms = Terms(user_id=f"burst-{customer}", channel="online", now=now, ttl=TTL, cap=6)
        async with await psycopg.AsyncConnection.connect(regional_dsn, autocommit=True) as conn:
            held = await place_best_available(conn, show.show_id, terms, 2, None)
        return sorted(seat.seat_id for seat in held.seats)

    async def burst() -> list[list[int] | BaseException]:
        return await asyncio.gather(*(one(i) for i in range(blocks)), return_exceptions=True)

    answers = asyncio.run(burst())

    assert all(isinstance(a, list) for a in answers), answers  # nobody told "no seats"
    assert sorted(seat for a in answers if isinstance(a, list) for seat in a) == sorted(
        show.seats.values()
    )
    assert query(
        regional_dsn, "SELECT count(*) FROM reservations WHERE show_id = %s", show.show_id
    ) == [(blocks,)]


def _keyed_hold(dsn: str, show_id: str, seat_ids: list[int], key: Key, now: datetime) -> object:
    """An uncapped keyed hold as the endpoint places it: its reservation, or the key's row."""
    terms = Terms(user_id="staff-1", channel="online", now=now, ttl=TTL, key=key)

    async def main() -> object:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await key.run(conn, lambda: place_hold(conn, show_id, terms, seat_ids))

    return asyncio.run(main())


def _wait_for_a_lock_waiter(dsn: str) -> None:
    """Until a session waits for an advisory lock (the duplicate, on the customer's)."""
    deadline = time.monotonic() + DID_NOT_BLOCK_S
    while time.monotonic() < deadline:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        if query(dsn, waiting) == [(1,)]:
            return
        time.sleep(0.01)
    raise AssertionError("the duplicate never waited for its first")


def test_a_duplicate_of_an_uncapped_keyed_hold_in_flight_waits_for_it_and_replays_it(
    regional_dsn: str, show: ShowSeed
) -> None:
    # It no longer waits on the seats (skipped), so it waits on the (customer, show) lock, which
    # an uncapped hold now takes too; then it finds the key its first stored.
    now = datetime.now(UTC)
    key, seat_ids = Key("staff-1", "dup-1", "fingerprint"), show.ids("A1", "A2")
    params = {
        "cap": None,
        "rid": "res-eu-west-dupfirst0001",
        "show_id": show.show_id,
        "user_id": "staff-1",
        "email": None,
        "channel": "online",
        "deadline": now + TTL,
        "now": now,
        "seat_ids": seat_ids,
    }
    with psycopg.connect(regional_dsn) as first, ThreadPoolExecutor(max_workers=1) as pool:
        first.execute(sql.CLAIM_KEYED, params | key.params())
        again = pool.submit(_keyed_hold, regional_dsn, show.show_id, seat_ids, key, now)
        try:
            _wait_for_a_lock_waiter(regional_dsn)
        finally:
            first.commit()
        replayed = again.result(timeout=DID_NOT_BLOCK_S)

    assert isinstance(replayed, Stored), replayed
    assert replayed.made("reservation_id") == params["rid"]


def test_a_hold_refused_for_a_taken_seat_is_one_statement(
    regional_dsn: str, show: ShowSeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refused claim's rows (a scheduled show's seats) say why: no second read of the show.
    now = datetime.now(UTC)
    place(
        regional_dsn, show_id=show.show_id, seat_ids=show.ids("A1"), user_id="u", now=now, ttl=TTL
    )
    sent: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def record(cursor: psycopg.AsyncCursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        sent.append(" ".join(str(query).split())[:40])
        return await execute(cursor, query, *args, **kw)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", record)

    answer = _place_or_refusal(regional_dsn, show.show_id, show.ids("A1", "A2"), now)

    assert isinstance(answer, SeatsTaken), answer
    assert answer.extra == {"seats": ["A1"]}
    assert sent == ["SELECT * FROM claim_seats(%(show_id)s, C"], sent


def test_a_claim_refused_by_the_seat_cap_locks_none_of_its_seats(
    regional_dsn: str, show: ShowSeed
) -> None:
    # Migration 0014 decides the cap before locking: a customer at the cap no longer makes
    # another customer's claim of the same seat skip it while the refused claim's transaction
    # is open.
    now = datetime.now(UTC)
    place(
        regional_dsn,
        show_id=show.show_id,
        seat_ids=show.ids("A1"),
        user_id="first",
        now=now,
        ttl=TTL,
    )
    capped = CLAIM.replace(", 6)", ", 1)")
    with psycopg.connect(regional_dsn) as first:
        rows = first.execute(
            capped, (show.show_id, show.ids("A2"), "res-eu-west-capped", "first", now, now + TTL)
        ).fetchall()
        assert [won for (won,) in rows] == [False]

        answer = _place_elsewhere(regional_dsn, show, ["A2"], now, open_=first)

        assert not isinstance(answer, SeatsTaken), answer
        assert first.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
