"""Hot show reads: the hot pool with no session, and the replica's cache (bound, ETag, flights).

Each test serves a real app on loopback over a fresh database. Where a test proves that this
replica's own writes show at once, the cache's bound is set to a minute, so only invalidation
can explain a fresh answer.
"""

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import psycopg
from prometheus_client import REGISTRY

from harness.tokens import TestIssuer
from regional_api.clock import Clock
from regional_api.shows.cache import ShowCache
from schemas.auth import Role
from tests.regional_api.factories import (
    GOOD_CARD,
    PRICES,
    ShowSeed,
    hold,
    make_cinema,
    make_hall,
    make_movie,
)
from tests.regional_api.shows.conftest import MINUTE_MS, metric, serve
from tests.support.poll import wait_until


def routed(template: str, status: str) -> float:
    """Requests of the regional API answered under a route template with a status."""
    labels = {"service": "regional_api", "method": "GET", "route": template, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def test_a_seat_taken_behind_the_replicas_back_shows_within_the_bound(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    with serve(regional_dsn, issuer) as served:  # the default bound, 250 ms
        hits = metric("show_cache_hits_total", "seats")
        assert served.status(show, "A2") == "free"
        free_before = served.client.get(f"/shows/{show.show_id}").json()["free_seats"]
        wait_until(
            lambda: (
                served.seats(show).status_code == 200
                and metric("show_cache_hits_total", "seats") > hits
            ),
            timeout=10,
        )  # a map read soon after another is served from the cache
        hold(regional_dsn, show, ["A2"], user_id="user-elsewhere", now=datetime.now(UTC))
        wait_until(lambda: served.status(show, "A2") == "held", timeout=10)
        wait_until(
            lambda: (
                served.client.get(f"/shows/{show.show_id}").json()["free_seats"] == free_before - 1
            ),
            timeout=10,
        )


def test_the_replicas_own_holds_releases_and_payments_show_at_once(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    with serve(regional_dsn, issuer, show_cache_max_age_ms=MINUTE_MS) as served:
        assert served.status(show, "A1") == "free"
        free = served.client.get(f"/shows/{show.show_id}").json()["free_seats"]
        held = served.hold(show, "A1")
        assert held.status_code == 201, held.text
        assert served.status(show, "A1") == "held"
        assert served.client.get(f"/shows/{show.show_id}").json()["free_seats"] == free - 1
        reservation = held.json()["id"]
        released = served.client.post(
            f"/reservations/{reservation}/release", headers=served.customer
        )
        assert released.status_code == 200, released.text
        assert served.status(show, "A1") == "free"
        again = served.hold(show, "A1").json()["id"]
        assert served.status(show, "A1") == "held"
        paid = served.client.post(
            f"/reservations/{again}/payments",
            json={"method": "card", "card_number": GOOD_CARD},
            headers=served.customer,
        )
        assert paid.status_code == 201, paid.text
        assert served.status(show, "A1") == "sold"


def test_304_while_unchanged_and_a_body_again_after_a_change(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    with serve(regional_dsn, issuer, show_cache_max_age_ms=MINUTE_MS) as served:
        for path, kind in (
            (f"/shows/{show.show_id}/seats", "seats"),
            (f"/shows/{show.show_id}", "show"),
        ):
            first = served.client.get(path)
            etag = first.headers["etag"]
            assert first.headers["cache-control"] == "no-cache"
            answered = metric("show_cache_not_modified_total", kind)
            template = "/shows/{show_id}" + ("/seats" if kind == "seats" else "")
            logged = routed(template, "304")
            same = served.client.get(path, headers={"If-None-Match": etag})
            assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
            assert metric("show_cache_not_modified_total", kind) == answered + 1
            # Counted under its route, not its path, once the answer is sent (the client may
            # read it first).
            wait_until(lambda: routed(template, "304") == logged + 1, timeout=10)  # noqa: B023
            again = served.client.get(path)
            assert (again.content, again.headers["etag"]) == (first.content, etag)
            assert again.headers["content-type"] == "application/json"
            assert served.hold(show, "B1" if kind == "seats" else "B2").status_code == 201
            changed = served.client.get(path, headers={"If-None-Match": etag})
            assert changed.status_code == 200
            assert changed.headers["etag"] != etag
            assert changed.json() != first.json()


def test_concurrent_misses_of_one_show_run_one_query(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    readers = 12
    with serve(regional_dsn, issuer) as served:
        loads, misses = (
            metric("show_cache_loads_total", "seats"),
            metric("show_cache_misses_total", "seats"),
        )
        answers: list[int] = []
        # The map's query waits on the lock until every reader has missed and joined it.
        with psycopg.connect(regional_dsn) as blocker:
            blocker.execute("LOCK TABLE halls IN ACCESS EXCLUSIVE MODE")
            threads = [
                threading.Thread(target=lambda: answers.append(served.seats(show).status_code))
                for _ in range(readers)
            ]
            for thread in threads:
                thread.start()
            wait_until(
                lambda: metric("show_cache_misses_total", "seats") == misses + readers, timeout=10
            )
        for thread in threads:
            thread.join(timeout=15)
        assert answers == [200] * readers
        assert metric("show_cache_loads_total", "seats") == loads + 1


def test_a_hold_on_a_seat_a_stale_map_shows_free_gets_409(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    with serve(regional_dsn, issuer, show_cache_max_age_ms=MINUTE_MS) as served:
        assert served.status(show, "A4") == "free"
        hold(regional_dsn, show, ["A4"], user_id="user-elsewhere", now=datetime.now(UTC))
        assert served.status(show, "A4") == "free"  # stale: taken behind the replica's back
        refused = served.hold(show, "A4")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "seats_taken"


def test_hot_reads_open_no_sqlalchemy_session(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    def no_session() -> None:
        raise AssertionError("a hot read opened a SQLAlchemy session")

    with serve(regional_dsn, issuer, show_cache_max_age_ms=0) as served:
        assert served.hold(show, "A3").status_code == 201
        served.app.state.sessionmaker = no_session
        admin = issuer.headers(role=Role.admin)
        for path, headers in (
            (f"/shows/{show.show_id}", {}),
            (f"/shows/{show.show_id}/seats", {}),
            ("/me/reservations", served.customer),
            ("/customers/user-cache-test/reservations", admin),
        ):
            response = served.client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)
        mine = served.client.get("/me/reservations", headers=served.customer).json()
        assert [seat["label"] for seat in mine["items"][0]["seats"]] == ["A3"]


def test_the_cache_keeps_its_most_recent_entries_and_drops_a_read_older_than_a_change() -> None:
    async def scenario() -> tuple[int, int]:
        cache, loads = ShowCache(60, max_entries=2), 0
        now = datetime.now(UTC)

        async def load() -> tuple[bytes, str]:
            nonlocal loads
            loads += 1
            return b"{}", "e"

        for show_id in ("a", "b", "a", "c", "a"):  # "b" is the least recent when "c" comes
            await cache.get(("seats", show_id), now, load)
        evicted_loads = loads
        gate = asyncio.Event()

        async def slow() -> tuple[bytes, str]:
            await gate.wait()
            return b"{}", "e"

        reading = asyncio.ensure_future(cache.get(("seats", "d"), now, slow))
        await asyncio.sleep(0)
        cache.forget("d")  # the show changed while its query ran: the answer is not kept
        gate.set()
        await reading
        await cache.get(("seats", "d"), now, load)
        return evicted_loads, loads - evicted_loads

    assert asyncio.run(scenario()) == (3, 1)


def test_a_cached_show_read_is_byte_for_byte_what_fastapi_renders(
    regional_dsn: str, issuer: TestIssuer
) -> None:
    cinema = make_cinema(regional_dsn, name="Cinéma Étoile")  # non-ASCII in the body
    hall, movie = make_hall(regional_dsn, cinema), make_movie(regional_dsn)
    starts = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = {"movie_id": movie, "starts_at": starts, "prices": PRICES}
    with serve(regional_dsn, issuer) as served:
        admin = issuer.headers(role=Role.admin)
        created = served.client.post(f"/halls/{hall}/shows", json=body, headers=admin)
        assert created.status_code == 201, created.text
        path = f"/shows/{created.json()['id']}"
        assert served.client.get(path).content == created.content  # the miss
        assert served.client.get(path).content == created.content  # a hit (or another miss)


def test_the_cache_ages_by_the_apps_clock_so_a_lapsed_hold_shows_free(
    regional_dsn: str, issuer: TestIssuer, show: ShowSeed
) -> None:
    with serve(regional_dsn, issuer, show_cache_max_age_ms=MINUTE_MS) as served:
        hold(regional_dsn, show, ["B2"], user_id="user-elsewhere", now=datetime.now(UTC))
        assert served.status(show, "B2") == "held"
        assert served.status(show, "B2") == "held"  # from the cache
        later = Clock()
        later.advance(timedelta(minutes=11))  # past the hold's deadline, and the entry's minute
        served.app.state.clock = later
        assert served.status(show, "B2") == "free"
