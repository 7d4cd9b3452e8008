"""The full-show hint: the cache itself, then holds on a full show over HTTP and in services."""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import make_engine, make_sessionmaker
from harness import tokens
from harness.live import live_server
from regional_api.reservations import service
from regional_api.reservations.full_shows import FullShows, forget_on_commit
from schemas.auth import Role
from tests.regional_api.factories import ShowSeed, grid_rows, seed_show
from tests.regional_api.reservations.conftest import make_app

T = TypeVar("T")
NOW = datetime(2030, 1, 1, 20, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
LABELS = {1: "A1", 2: "A2", 3: "B1"}
# The seeded 2 x 3 hall: row A is wheelchair, premium, premium; row B is all vip.
ROW_A = ("A1", "A2", "A3")
ROW_B = ("B1", "B2", "B3")


# The cache alone.


def test_mark_holds_until_the_earlier_of_until_and_ttl() -> None:
    full = FullShows(10)
    full.mark("s1", now=NOW, until=NOW + 3 * SECOND, labels=LABELS)
    full.mark("s2", now=NOW, until=NOW + timedelta(hours=1), labels=LABELS)
    assert full.is_full("s1", NOW)
    assert full.is_full("s1", NOW + 2 * SECOND)
    assert not full.is_full("s1", NOW + 3 * SECOND)
    assert full.is_full("s2", NOW + 9 * SECOND)
    assert not full.is_full("s2", NOW + 10 * SECOND)
    assert not full.is_full("other", NOW)
    assert len(full) == 0  # expired entries are dropped when looked at


def test_taken_names_known_seats_only() -> None:
    full = FullShows(10)
    assert full.taken("s1", [1], NOW) is None
    full.mark("s1", now=NOW, until=NOW + SECOND, labels=LABELS)
    assert full.taken("s1", [3, 1], NOW) == ["A1", "B1"]
    assert full.taken("s1", [1, 99], NOW) is None  # the database answers unknown seats
    assert full.taken("s1", [1], NOW + SECOND) is None


def test_a_map_with_free_seats_refuses_only_what_it_shows_taken() -> None:
    full = FullShows(10)
    full.mark(
        "s1", now=NOW, until=NOW + SECOND, labels=LABELS, free=frozenset({2}), no_block_from=2
    )
    assert not full.is_full("s1", NOW)
    assert full.taken("s1", [1, 2, 3], NOW) == ["A1", "B1"]
    assert full.taken("s1", [2], NOW) is None  # free then: the database decides
    assert full.lacks_block("s1", 2, NOW)
    assert full.lacks_block("s1", 3, NOW)
    assert not full.lacks_block("s1", 1, NOW)
    full.mark("s2", now=NOW, until=NOW + SECOND, labels=LABELS)  # full: no block of any size
    assert full.lacks_block("s2", 1, NOW)
    assert not full.lacks_block("other", 1, NOW)


def test_forget_and_stale_marks() -> None:
    full = FullShows(10)
    full.mark("s1", now=NOW, until=NOW + SECOND, labels=LABELS)
    seen = full.version
    full.forget("s1")
    assert not full.is_full("s1", NOW)
    full.mark("s1", now=NOW, until=NOW + SECOND, labels=LABELS, seen=seen)
    assert not full.is_full("s1", NOW)  # read before the forget: not recorded
    full.mark("s1", now=NOW, until=NOW + SECOND, labels=LABELS, seen=full.version)
    assert full.is_full("s1", NOW)
    full.forget("never-marked")


def test_zero_ttl_or_past_until_caches_nothing() -> None:
    off = FullShows(0)
    off.mark("s1", now=NOW, until=NOW + timedelta(hours=1), labels=LABELS)
    assert not off.is_full("s1", NOW)
    assert len(off) == 0
    on = FullShows(10)
    on.mark("s1", now=NOW, until=NOW, labels=LABELS)
    assert len(on) == 0


def test_memory_is_bounded_by_seats() -> None:
    full = FullShows(10, max_seats=40)  # each entry costs its seats + 1
    for i in range(3):
        full.mark(f"old{i}", now=NOW, until=NOW + SECOND, labels=LABELS)
    for i in range(20):
        full.mark(f"s{i}", now=NOW + 2 * SECOND, until=NOW + 5 * SECOND, labels=LABELS)
        assert len(full) <= 10
    assert len(full) == 10
    assert not any(full.is_full(f"old{i}", NOW) for i in range(3))  # expired went first
    assert full.is_full("s19", NOW)
    assert not full.is_full("s0", NOW)
    full.mark("huge", now=NOW, until=NOW + SECOND, labels=dict.fromkeys(range(50), "X"))
    assert not full.is_full("huge", NOW)
    assert len(full) == 10


def _run(dsn: str, work: Callable[[AsyncSession], Awaitable[T]], *, commit: bool = True) -> T:
    async def main() -> T:
        engine = make_engine(dsn, service="test", pool_size=1, max_overflow=0)
        try:
            async with make_sessionmaker(engine)() as session:
                result = await work(session)
                await (session.commit() if commit else session.rollback())
                return result
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_forget_on_commit_waits_for_the_commit(regional_dsn: str) -> None:
    full = FullShows(10)

    async def forget(session: AsyncSession) -> bool:
        forget_on_commit(session, full, "s1")
        forget_on_commit(session, full, "s2")
        return full.is_full("s1", NOW)

    for commit in (False, True):
        for show_id in ("s1", "s2"):
            full.mark(show_id, now=NOW, until=NOW + SECOND, labels=LABELS)
        assert _run(regional_dsn, forget, commit=commit)  # still full inside the transaction
        assert full.is_full("s1", NOW) is not commit
        assert full.is_full("s2", NOW) is not commit


# Holds on a full show.


def _counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _counters() -> dict[str, float]:
    conflict = "reservation_holds_total"
    return {
        "seats": _counter("holds_refused_full_total", kind="seats"),
        "best": _counter("holds_refused_full_total", kind="best_available"),
        "conflict_seats": _counter(conflict, outcome="conflict", kind="seats"),
        "conflict_best": _counter(conflict, outcome="conflict", kind="best_available"),
        "conflicts": _counter("reservation_conflicts_total"),
    }


Served = tuple[FastAPI, httpx.Client]


@contextmanager
def serve(regional_dsn: str, issuer: tokens.TestIssuer, **overrides: Any) -> Iterator[Served]:
    app = make_app(regional_dsn, issuer, **overrides)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield app, client


@pytest.fixture
def served(regional_dsn: str, issuer: tokens.TestIssuer) -> Iterator[Served]:
    # A long TTL: whatever lets a hold through below is a forget or a hold's deadline.
    with serve(regional_dsn, issuer, full_show_hint_seconds=3600) as served:
        yield served


@pytest.fixture
def small(regional_dsn: str) -> ShowSeed:
    return seed_show(regional_dsn, rows=grid_rows(2, 3, None))


def hold(client: httpx.Client, show: ShowSeed, who: dict[str, str], *labels: str) -> httpx.Response:
    body = {"seat_ids": show.ids(*labels)}
    return client.post(f"/shows/{show.show_id}/holds", json=body, headers=who)


def best(
    client: httpx.Client, show: ShowSeed, who: dict[str, str], count: int = 1
) -> httpx.Response:
    return client.post(f"/shows/{show.show_id}/best-available", json={"count": count}, headers=who)


def fill(client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer) -> list[str]:
    """Hold every seat (row A by ann, row B by ben); return the two reservation ids."""
    ids = []
    for sub, labels in (("ann", ROW_A), ("ben", ROW_B)):
        response = hold(client, show, issuer.headers(sub=sub), *labels)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def is_full(app: FastAPI, show: ShowSeed) -> bool:
    full: FullShows = app.state.full_shows
    return full.is_full(show.show_id, app.state.clock.now())


def test_full_show_refusals_answer_as_before(
    served: Served, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app, client = served
    cat = issuer.headers(sub="cat")
    fill(client, small, issuer)
    by_database = hold(client, small, cat, "B2", "A1")
    assert by_database.status_code == 409
    assert by_database.json()["seats"] == ["A1", "B2"]
    assert not is_full(app, small)  # a refused seat hold does not read the seat map
    before = _counters()
    refused = best(client, small, cat, 2)
    assert refused.status_code == 409
    assert refused.json()["error"] == "no_adjacent_seats"
    assert is_full(app, small)
    by_hint = hold(client, small, cat, "B2", "A1")
    assert (by_hint.status_code, by_hint.json()) == (409, by_database.json())
    assert best(client, small, cat, 2).json() == refused.json()
    after = _counters()
    assert after["seats"] - before["seats"] == 1
    assert after["best"] - before["best"] == 1  # the first one read the seat map
    assert after["conflict_seats"] - before["conflict_seats"] == 1
    assert after["conflict_best"] - before["conflict_best"] == 2
    assert after["conflicts"] - before["conflicts"] == 3
    assert 'holds_refused_full_total{kind="seats"}' in client.get("/metrics").text
    body = {"seat_ids": [*small.ids("A1"), 10**12]}
    unknown = client.post(f"/shows/{small.show_id}/holds", json=body, headers=cat)
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "unknown_seats"
    assert unknown.json()["seat_ids"] == [10**12]


def test_release_lets_the_next_hold_through_at_once(
    served: Served, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app, client = served
    ann, cat = issuer.headers(sub="ann"), issuer.headers(sub="cat")
    first, _ = fill(client, small, issuer)
    assert best(client, small, cat).status_code == 409
    assert is_full(app, small)
    assert client.post(f"/reservations/{first}/release", headers=ann).status_code == 200
    assert not is_full(app, small)
    assert hold(client, small, cat, "A2").status_code == 201
    assert best(client, small, cat).status_code == 201
    assert best(client, small, cat).status_code == 409  # only A1 is left: a wheelchair seat
    assert not is_full(app, small)  # a free seat of any type means not full
    assert hold(client, small, cat, "A1").status_code == 201  # free in that map: the database
    assert best(client, small, cat).status_code == 409  # answered by the map read before


def test_a_map_without_a_pair_refuses_pairs_and_taken_seats_only(
    served: Served, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app, client = served
    ann, cat = issuer.headers(sub="ann"), issuer.headers(sub="cat")
    assert hold(client, small, ann, "A2", "B1", "B3").status_code == 201  # A3 and B2 stay single
    before = _counters()
    assert best(client, small, cat, 2).status_code == 409  # reads the map: no pair left
    assert not is_full(app, small)
    assert best(client, small, cat, 3).json()["error"] == "no_adjacent_seats"  # by the hint
    by_hint = hold(client, small, cat, "A2", "A3")
    assert (by_hint.status_code, by_hint.json()["seats"]) == (409, ["A2"])
    after = _counters()
    assert (after["best"] - before["best"], after["seats"] - before["seats"]) == (1, 1)
    assert hold(client, small, cat, "A3").status_code == 201  # free in the map: the database
    assert best(client, small, cat, 1).status_code == 201  # B2: single seats were never refused


def test_cancellations_forget_the_hint(
    served: Served, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app, client = served
    staff = issuer.headers(role=Role.staff, cinemas=(small.cinema_id,))
    first, _ = fill(client, small, issuer)
    assert best(client, small, staff).status_code == 409
    assert client.post(f"/reservations/{first}/cancel", headers=staff).status_code == 200
    assert not is_full(app, small)
    assert hold(client, small, staff, *ROW_A).status_code == 201
    assert best(client, small, staff).status_code == 409
    assert is_full(app, small)
    assert client.post(f"/shows/{small.show_id}/cancel", headers=staff).status_code == 200
    refused = hold(client, small, staff, "A1")
    assert refused.json()["error"] == "show_not_bookable"  # not the hint's seats_taken


def test_hint_lapses_at_the_first_hold_deadline(
    served: Served, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app, client = served
    cat = issuer.headers(sub="cat")
    fill(client, small, issuer)
    assert best(client, small, cat).status_code == 409
    before = _counters()["seats"]
    app.state.clock.advance(timedelta(minutes=9))  # holds last 10 minutes
    assert hold(client, small, cat, "A2").json()["error"] == "seats_taken"
    assert _counters()["seats"] == before + 1
    app.state.clock.advance(timedelta(minutes=2))
    assert not is_full(app, small)
    assert hold(client, small, cat, "A2").status_code == 201


def test_zero_seconds_disables_the_hint(
    regional_dsn: str, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    with serve(regional_dsn, issuer, full_show_hint_seconds=0) as (app, client):
        cat = issuer.headers(sub="cat")
        fill(client, small, issuer)
        before = _counters()
        assert best(client, small, cat).status_code == 409
        assert hold(client, small, cat, "A2").json()["seats"] == ["A2"]
        assert len(app.state.full_shows) == 0
        after = _counters()
        assert (after["seats"], after["best"]) == (before["seats"], before["best"])


def test_retried_key_replays_the_hold_that_filled_the_show(
    served: Served, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app, client = served
    ann = issuer.headers(sub="ann")
    assert hold(client, small, issuer.headers(sub="ben"), *ROW_B).status_code == 201
    keyed = {**ann, "Idempotency-Key": "fill-the-show"}
    first = hold(client, small, keyed, *ROW_A)
    assert first.status_code == 201
    assert best(client, small, ann).status_code == 409
    assert is_full(app, small)
    again = hold(client, small, keyed, *ROW_A)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_box_office_sales_ignore_the_hint(
    served: Served, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app, client = served
    staff = issuer.headers(role=Role.staff, cinemas=(small.cinema_id,))
    full: FullShows = app.state.full_shows
    now = app.state.clock.now()
    labels = dict(zip(small.ids(*ROW_A, *ROW_B), (*ROW_A, *ROW_B), strict=True))
    full.mark(small.show_id, now=now, until=now + timedelta(minutes=5), labels=labels)
    assert hold(client, small, staff, "A2").json()["seats"] == ["A2"]  # a wrong hint refuses
    sale = {"seat_ids": small.ids("A2"), "method": "cash"}
    sold = client.post(f"/shows/{small.show_id}/sales", json=sale, headers=staff)
    assert sold.status_code == 201, sold.text


def test_sweeper_forgets_the_shows_it_frees(
    regional_dsn: str, served: Served, small: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app, client = served
    assert hold(client, small, issuer.headers(sub="ann"), "A2").status_code == 201
    full: FullShows = app.state.full_shows
    # The hint lapses by the first hold's deadline; mark after it to see the sweep forget it.
    later = app.state.clock.now() + timedelta(minutes=11)
    full.mark(small.show_id, now=later, until=later + SECOND, labels={})

    async def sweep(session: AsyncSession) -> int:
        return await service.expire_lapsed_holds(session, now=later, limit=100, full=full)

    assert _run(regional_dsn, sweep) == 1
    assert not full.is_full(small.show_id, later)
