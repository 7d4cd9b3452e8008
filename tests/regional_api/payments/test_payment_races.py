"""A payment statement that waits for a row's lock writes the row as it is once the lock is granted.

READ COMMITTED: a row updated and committed by another transaction while a statement waits for
its lock is locked in its newest version, which that statement's snapshot cannot see. A write
that found the row by a row id taken from the lock (`ctid`) would then find nothing and skip
it: a confirmed reservation whose seat was never sold, a payment opened for a reservation left
expired. Found by key, the write follows the row to its newest version
(`regional_api/payments/statements.py`, `OPEN_PAYMENT` and `SETTLE`).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg

from regional_api.payments.provider import ProviderResult, ProviderStatus
from regional_api.payments.service import Intent, open_payment, settle
from tests.regional_api.factories import ShowSeed, hold, query, seed_show

USER = "user-race"
LOCK_WAIT_S = 20.0  # generous: the statement reaches the locked row in milliseconds
GUARD = timedelta(minutes=5)
T = TypeVar("T")


def _wait_until_blocked(dsn: str, pid: int) -> None:
    """Until backend `pid` waits for a lock (its statement has met the locked row)."""
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
    deadline = time.monotonic() + LOCK_WAIT_S
    while query(dsn, waiting, pid) != [(1,)]:
        assert time.monotonic() < deadline, "the statement never waited for the row's lock"
        time.sleep(0.02)


async def _behind_a_write(
    dsn: str,
    conn: psycopg.AsyncConnection[Any],
    write: str,
    params: tuple[Any, ...],
    statement: Callable[[], Awaitable[T]],
) -> T:
    """Run `statement` on `conn` while another transaction has run `write` and not committed;
    commit that transaction once `statement` waits for its lock."""
    with psycopg.connect(dsn) as other:
        other.execute(write, params)
        running = asyncio.ensure_future(statement())
        await asyncio.to_thread(_wait_until_blocked, dsn, conn.info.backend_pid)
        other.commit()
    return await running


async def _open(conn: psycopg.AsyncConnection[Any], rid: str, now: datetime) -> Intent:
    return await open_payment(
        conn, reservation_id=rid, method="card", region="eu-west", now=now, guard_until=now + GUARD
    )


def _seats(dsn: str, show: ShowSeed) -> list[tuple[Any, ...]]:
    return query(
        dsn,
        "SELECT status, reservation_id FROM show_seats WHERE show_id = %s AND seat_id = ANY(%s)"
        " ORDER BY seat_id",
        show.show_id,
        show.ids("A1", "A2"),
    )


def test_a_seat_updated_while_the_settle_waits_for_it_is_still_sold(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    now = datetime.now(UTC)
    rid = hold(regional_dsn, show, ["A1", "A2"], user_id=USER, now=now)

    async def pay() -> str:
        async with await psycopg.AsyncConnection.connect(regional_dsn, autocommit=True) as conn:
            intent = await _open(conn, rid, now)
            done = ProviderResult(ProviderStatus.completed, "ref-race")
            attempt = await _behind_a_write(
                regional_dsn,
                conn,
                # A1 still this reservation's and held: another writer touched the row.
                "UPDATE show_seats SET price_minor = price_minor"
                " WHERE show_id = %s AND seat_id = %s",
                (show.show_id, show.ids("A1")[0]),
                lambda: settle(conn, intent, done, now=now),
            )
        return attempt.reservation_status

    assert asyncio.run(pay()) == "confirmed"
    assert _seats(regional_dsn, show) == [("sold", rid), ("sold", rid)]
    tickets = query(
        regional_dsn,
        "SELECT count(*) FROM reservation_seats WHERE reservation_id = %s"
        " AND ticket_code IS NOT NULL",
        rid,
    )
    assert tickets == [(2,)]


def test_a_hold_expired_while_the_payment_opens_is_held_again_with_its_seats(
    regional_dsn: str,
) -> None:
    show = seed_show(regional_dsn)
    now = datetime.now(UTC)
    # Held eleven minutes ago for ten: lapsed, its seats free by the rule, nobody took them.
    rid = hold(regional_dsn, show, ["A1", "A2"], user_id=USER, now=now - timedelta(minutes=11))

    async def open_() -> None:
        async with await psycopg.AsyncConnection.connect(regional_dsn, autocommit=True) as conn:
            await _behind_a_write(
                regional_dsn,
                conn,
                # The expiry sweep marks the reservation expired while the payment opens.
                "UPDATE reservations SET status = 'expired' WHERE id = %s",
                (rid,),
                lambda: _open(conn, rid, now),
            )

    asyncio.run(open_())
    ((status, expires),) = query(
        regional_dsn, "SELECT status, hold_expires_at FROM reservations WHERE id = %s", rid
    )
    assert status == "held"
    assert expires >= now + GUARD
    assert _seats(regional_dsn, show) == [("held", rid), ("held", rid)]
