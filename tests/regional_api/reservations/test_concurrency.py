"""Many clients at once: overlapping holds never double-book, paying lapsed holds races new holds
for their seats, duplicate keys have one effect."""

import asyncio
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from harness import tokens
from harness.live import live_server
from tests.regional_api.factories import GOOD_CARD, ShowSeed
from tests.regional_api.reservations.conftest import make_app
from tests.regional_api.served import fast_provider

CLIENTS = 200
Lapsed = tuple[str, list[int]]  # a lapsed hold's owner and seats


@pytest.fixture
def app(regional_dsn: str, issuer: tokens.TestIssuer) -> FastAPI:
    # One connection per client: the race is decided by row locks, not by the pool.
    app = make_app(regional_dsn, issuer, db_pool_size=CLIENTS)
    app.state.payment_provider = fast_provider()
    return app


async def _storm(
    base_url: str, show: ShowSeed, issuer: tokens.TestIssuer, *, keyed: bool
) -> list[tuple[int, dict[str, Any]]]:
    rng = random.Random(4)
    pool = show.ids(*[f"{row}{n}" for row in "EF" for n in range(1, 13)])
    requests = [
        (
            issuer.headers(sub=f"racer-{i}") | ({"Idempotency-Key": f"race-{i}"} if keyed else {}),
            sorted(rng.sample(pool, rng.randint(1, 4))),
        )
        for i in range(CLIENTS)
    ]
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def one(headers: dict[str, str], seat_ids: list[int]) -> tuple[int, dict[str, Any]]:
            # A busy server may answer 503 (Retry-After) before doing anything: retry (under the
            # same Idempotency-Key if any), as a real client would; a 500 is never acceptable.
            for _ in range(10):
                response = await client.post(
                    f"/shows/{show.show_id}/holds", json={"seat_ids": seat_ids}, headers=headers
                )
                if response.status_code != 503:
                    break
                await asyncio.sleep(0.2)
            return response.status_code, response.json()

        return await asyncio.gather(*(one(h, s) for h, s in requests))


@pytest.mark.parametrize("keyed", [True, False], ids=["with-keys", "without-keys"])
def test_overlapping_holds_never_double_book(
    base_url: str, regional_dsn: str, show: ShowSeed, issuer: tokens.TestIssuer, keyed: bool
) -> None:
    # With a key the hold runs in a transaction with the key; without one, on its own.
    results = asyncio.run(_storm(base_url, show, issuer, keyed=keyed))
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] > 0
    assert statuses[409] > 0
    winners = {
        body["id"]: {s["seat_id"] for s in body["seats"]}
        for status, body in results
        if status == 201
    }
    claimed: set[int] = set()
    for seats in winners.values():
        assert not seats & claimed  # pairwise disjoint
        claimed |= seats
    with psycopg.connect(regional_dsn) as conn:
        held: dict[int, str] = dict(
            conn.execute(
                "SELECT seat_id, reservation_id FROM show_seats"
                " WHERE show_id = %s AND status = 'held'",
                (show.show_id,),
            ).fetchall()
        )
        live = conn.execute(
            "SELECT count(*) FROM reservations WHERE show_id = %s AND status = 'held'",
            (show.show_id,),
        ).fetchone()
    assert set(held) == claimed
    for rid, seats in winners.items():
        assert all(held[seat] == rid for seat in seats)
    assert live == (len(winners),)  # losers left no reservation behind


async def _pay_or_take(
    base_url: str, show: ShowSeed, issuer: tokens.TestIssuer, lapsed: dict[str, Lapsed]
) -> tuple[list[tuple[str, int]], list[tuple[list[int], int, dict[str, Any]]]]:
    """The owners of lapsed holds pay while newcomers hold the same seats, all at once."""
    rng = random.Random(7)
    seats = sorted(seat for _, pair in lapsed.values() for seat in pair)
    wanted = [sorted(rng.sample(seats, rng.randint(1, 3))) for _ in range(2 * len(lapsed))]
    limits = httpx.Limits(max_connections=len(lapsed) + len(wanted))
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def pay(rid: str) -> tuple[str, int]:
            response = await client.post(
                f"/reservations/{rid}/payments",
                json={"method": "card", "card_number": GOOD_CARD},
                headers=issuer.headers(sub=lapsed[rid][0]),
            )
            return rid, response.status_code

        async def take(i: int, seat_ids: list[int]) -> tuple[list[int], int, dict[str, Any]]:
            response = await client.post(
                f"/shows/{show.show_id}/holds",
                json={"seat_ids": seat_ids},
                headers=issuer.headers(sub=f"newcomer-{i}"),
            )
            return seat_ids, response.status_code, response.json()

        paid, taken = await asyncio.gather(
            asyncio.gather(*(pay(rid) for rid in lapsed)),
            asyncio.gather(*(take(i, ids) for i, ids in enumerate(wanted))),
        )
    return list(paid), list(taken)


def test_paying_lapsed_holds_races_new_holds_without_double_selling(
    app: FastAPI, base_url: str, regional_dsn: str, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    """Lapsed holds are paid (payment endpoint) while others hold their seats (hold endpoint).

    Each seat ends with at most one owner: sold to a paid reservation or held by a newcomer.
    """
    lapsed: dict[str, Lapsed] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for row, n in [(row, n) for row in "EF" for n in range(1, 13, 2)]:
            owner, pair = f"owner-{row}{n}", show.ids(f"{row}{n}", f"{row}{n + 1}")
            answer = client.post(
                f"/shows/{show.show_id}/holds",
                json={"seat_ids": pair},
                headers=issuer.headers(sub=owner),
            )
            assert answer.status_code == 201, answer.text
            lapsed[answer.json()["id"]] = (owner, pair)
    app.state.clock.advance(timedelta(minutes=11))
    paid, taken = asyncio.run(_pay_or_take(base_url, show, issuer, lapsed))
    assert {status for _, status in paid} <= {201, 409}, paid
    assert {status for _, status, _ in taken} <= {201, 409}, taken
    sold = {seat: rid for rid, status in paid if status == 201 for seat in lapsed[rid][1]}
    held = {
        seat: body["id"] for seat_ids, status, body in taken if status == 201 for seat in seat_ids
    }
    assert sold or held
    assert not set(sold) & set(held)
    rows = _seat_owners(regional_dsn, show)
    for seat, rid in sold.items():
        assert rows[seat] == ("sold", rid, "confirmed", 1)
    for seat, rid in held.items():
        assert rows[seat] == ("held", rid, "held", 0)
    for seat, (status, _, _, _) in rows.items():
        if status == "sold":
            assert seat in sold  # nothing sold that was not answered 201


def _seat_owners(dsn: str, show: ShowSeed) -> dict[int, tuple[str, str | None, str | None, int]]:
    """Each seat's status and reservation, that reservation's status and completed payments."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT ss.seat_id, ss.status, ss.reservation_id, r.status,"
            " (SELECT count(*) FROM payments p"
            "   WHERE p.reservation_id = r.id AND p.status = 'completed')"
            " FROM show_seats ss LEFT JOIN reservations r ON r.id = ss.reservation_id"
            " WHERE ss.show_id = %s",
            (show.show_id,),
        ).fetchall()
    return {seat: (status, rid, res_status, int(n)) for seat, status, rid, res_status, n in rows}


async def _duplicates(
    base_url: str, show: ShowSeed, headers: dict[str, str]
) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/shows/{show.show_id}/holds",
                    json={"seat_ids": show.ids("G5", "G6")},
                    headers=headers,
                )
                for _ in range(20)
            )
        )


def test_concurrent_duplicates_have_one_effect(
    base_url: str, regional_dsn: str, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    headers = {**issuer.headers(sub="dup"), "Idempotency-Key": "checkout-42"}
    responses = asyncio.run(_duplicates(base_url, show, headers))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    with psycopg.connect(regional_dsn) as conn:
        count = conn.execute("SELECT count(*) FROM reservations WHERE user_id = 'dup'").fetchone()
    assert count == (1,)


def test_idempotent_replay_and_reuse(
    client: httpx.Client, regional_dsn: str, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    me = {**issuer.headers(sub="idem"), "Idempotency-Key": "abc-1"}
    body = {"seat_ids": show.ids("A7")}
    first = client.post(f"/shows/{show.show_id}/holds", json=body, headers=me)
    again = client.post(f"/shows/{show.show_id}/holds", json=body, headers=me)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    reused = client.post(
        f"/shows/{show.show_id}/holds", json={"seat_ids": show.ids("A8")}, headers=me
    )
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused"
    # Keys are scoped per user: someone else's identical key is a new request.
    other = {**issuer.headers(sub="idem-2"), "Idempotency-Key": "abc-1"}
    taken = client.post(f"/shows/{show.show_id}/holds", json=body, headers=other)
    assert taken.status_code == 409
    # A refused attempt stores nothing: the same key may succeed later.
    retry = client.post(
        f"/shows/{show.show_id}/holds", json={"seat_ids": show.ids("A9")}, headers=other
    )
    assert retry.status_code == 201
    with psycopg.connect(regional_dsn) as conn:
        count = conn.execute("SELECT count(*) FROM reservations WHERE user_id = 'idem'").fetchone()
    assert count == (1,)


async def _greedy(
    base_url: str, pairs: list[list[int]], headers: dict[str, str], path: str
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(pairs))
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(path, json={"seat_ids": pair}, headers=headers) for pair in pairs)
        )


def test_one_customer_at_once_never_passes_the_seat_cap(
    regional_dsn: str, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    """30 simultaneous holds of free seats by one customer: the cap (6) lets exactly 3 through."""
    app = make_app(regional_dsn, issuer, db_pool_size=30)
    seat_ids = sorted(show.seats.values())[:60]
    pairs = [seat_ids[i : i + 2] for i in range(0, 60, 2)]
    headers = issuer.headers(sub="greedy")
    with live_server(app) as url:
        answers = asyncio.run(_greedy(url, pairs, headers, f"/shows/{show.show_id}/holds"))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 3, 409: 27}, statuses
    assert {a.json()["error"] for a in answers if a.status_code == 409} == {"seat_cap_exceeded"}
    with psycopg.connect(regional_dsn) as conn:
        held = conn.execute(
            "SELECT count(*) FROM show_seats ss JOIN reservations r ON r.id = ss.reservation_id"
            " WHERE r.user_id = 'greedy' AND ss.status = 'held'"
        ).fetchone()
    assert held == (6,)


def _wait_for_lock_waiters(dsn: str, count: int) -> None:
    """Until `count` sessions wait for an advisory lock (the claims are queued on the show's)."""
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
            if waiting == (count,):
                return
            time.sleep(0.01)
    raise AssertionError(f"{count} claims never queued on the show's lock")


def test_claims_released_at_once_still_keep_the_cap(regional_dsn: str, show: ShowSeed) -> None:
    """Ten claims by one customer, let go together by a show cancellation's lock: cap 6, 3 win.

    Each claim_seats call waits on the show's lock, then takes the customer's; its claim sees
    the claims committed before it (a snapshot taken after the locks, migration 0003).
    """
    seat_ids = sorted(show.seats.values())[:20]
    now = datetime.now(UTC)

    def claim(pair: list[int]) -> int:
        with psycopg.connect(regional_dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT won FROM claim_seats(%s, %s, %s, 'greedy', NULL, 'online', %s, %s, 6)",
                (show.show_id, pair, f"res-eu-west-cap{pair[0]}", now, now + timedelta(minutes=10)),
            ).fetchall()
            return sum(1 for (won,) in rows if won)

    with psycopg.connect(regional_dsn) as blocker:
        blocker.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('show:' || %s, 0))", (show.show_id,)
        )
        with ThreadPoolExecutor(max_workers=10) as pool:
            claims = [pool.submit(claim, seat_ids[i : i + 2]) for i in range(0, 20, 2)]
            _wait_for_lock_waiters(regional_dsn, 10)
            blocker.rollback()
            won = sorted(c.result() for c in claims)
    assert won == [0] * 7 + [2] * 3
