"""Scheduling shows over HTTP: details, bad input, the no-overlap rule (also under a race), roles."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from common.ids import new_id
from tests.regional_api.catalog.conftest import Auth
from tests.regional_api.factories import make_cinema, make_hall, make_movie

T0 = datetime(2031, 3, 14, 18, 0, tzinfo=UTC)  # 19:00 in Paris
SLOT = timedelta(minutes=100 + 15)  # movie duration + cleaning
PRICES = {"standard": 900, "premium": 1400, "vip": 2000, "wheelchair": 900, "companion": 0}
ROWS = ["AA_AA", "PP_PP", "VX_WC"]  # 12 seats, X blocked: 11 sellable


@pytest.fixture
def hall(regional_dsn: str) -> tuple[str, str, str]:
    """A Paris cinema with one hall and a 100-minute movie: (cinema_id, hall_id, movie_id)."""
    cinema_id = make_cinema(regional_dsn, name="Pathé", city="Paris")
    hall_id = make_hall(regional_dsn, cinema_id, rows=ROWS, name="Salle 1")
    movie_id = make_movie(regional_dsn, title="Alien", duration_minutes=100)
    return cinema_id, hall_id, movie_id


def body(movie_id: str, starts_at: datetime, **changes: object) -> dict[str, object]:
    """A show creation body."""
    return {"movie_id": movie_id, "starts_at": starts_at.isoformat(), "prices": PRICES} | changes


def test_create_show_and_read_it(api: httpx.Client, auth: Auth, hall: tuple[str, str, str]) -> None:
    cinema_id, hall_id, movie_id = hall
    starts = T0 + timedelta(hours=1)
    created = api.post(f"/halls/{hall_id}/shows", json=body(movie_id, starts), headers=auth.admin)
    assert created.status_code == 201, created.text
    show = created.json()
    assert show["id"].startswith("show-eu-west-")
    assert show | {"id": None} == {
        "id": None,
        "status": "scheduled",
        "movie_id": movie_id,
        "movie_title": "Alien",
        "duration_minutes": 100,
        "hall_id": hall_id,
        "hall_name": "Salle 1",
        "cinema_id": cinema_id,
        "cinema_name": "Pathé",
        "city": "Paris",
        "timezone": "Europe/Paris",
        "starts_at": "2031-03-14T19:00:00Z",
        "starts_at_local": "2031-03-14T20:00:00+01:00",
        "ends_at": (starts + SLOT).isoformat().replace("+00:00", "Z"),
        "currency": "EUR",
        "prices": PRICES,
        "seat_count": 11,
        "free_seats": 11,
    }
    assert api.get(f"/shows/{show['id']}").json() == show


def test_bad_show_input_is_4xx_with_a_reason(
    api: httpx.Client, auth: Auth, hall: tuple[str, str, str]
) -> None:
    _, hall_id, movie_id = hall
    path = f"/halls/{hall_id}/shows"
    naive = body(movie_id, T0) | {"starts_at": "2031-03-14T18:00:00"}
    cases = [
        (naive, "validation_error"),
        (body(movie_id, T0, prices={"standard": 900}), "missing_prices"),
        (body(movie_id, T0, prices={**PRICES, "standard": -1}), "validation_error"),
        (body(movie_id, T0, prices={**PRICES, "gold": 5}), "validation_error"),
        (body(movie_id, T0, prices={**PRICES, "vip": 1.5}), "validation_error"),
        (body(new_id("mov", "eu-west"), T0), "unknown_movie"),
        (body(new_id("mov", "us-east"), T0), "wrong_region"),
        (body("nonsense", T0), "not_found"),
        (body(movie_id, datetime.now(UTC) - timedelta(minutes=1)), "show_in_past"),
        (body(movie_id, T0, hall_id=hall_id), "validation_error"),
        (body(movie_id, T0) | {"starts_at": "9999-12-31T23:59:00Z"}, "validation_error"),
        (body(movie_id, T0) | {"starts_at": "0001-01-01T00:00:00+01:00"}, "validation_error"),
        (body(movie_id, T0) | {"starts_at": "2031-03-14"}, "validation_error"),
    ]
    for payload, error in cases:
        response = api.post(path, json=payload, headers=auth.admin)
        assert response.status_code == 422, (payload, response.text)
        assert response.json()["error"] == error, payload
    missing = api.post(path, json=body(movie_id, T0, prices={"vip": 1}), headers=auth.admin)
    assert missing.json()["missing"] == ["companion", "premium", "standard", "wheelchair"]
    # Blocked seats need no price: X is standard-blocked, yet standard is priced for A seats.
    unknown_hall = api.post(
        f"/halls/{new_id('hall', 'eu-west')}/shows", json=body(movie_id, T0), headers=auth.admin
    )
    assert (unknown_hall.status_code, unknown_hall.json()["error"]) == (404, "hall_not_found")


def test_overlaps_are_refused_adjacent_shows_and_canceled_ones_are_not(
    api: httpx.Client, auth: Auth, hall: tuple[str, str, str], regional_dsn: str
) -> None:
    _, hall_id, movie_id = hall
    path = f"/halls/{hall_id}/shows"

    def create(starts: datetime) -> httpx.Response:
        return api.post(path, json=body(movie_id, starts), headers=auth.admin)

    first = create(T0).json()
    adjacent = create(T0 + SLOT)  # starts exactly when the first (with cleaning) ends
    assert adjacent.status_code == 201, adjacent.text
    overlap = create(T0 - timedelta(minutes=60))
    assert overlap.status_code == 409
    assert overlap.json()["error"] == "show_overlap"
    assert overlap.json()["conflicting_show_id"] == first["id"]
    assert overlap.json()["conflicting_starts_at"] == T0.isoformat()
    assert create(T0 + SLOT - timedelta(minutes=1)).status_code == 409  # cleaning time counts

    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute("UPDATE shows SET status = 'canceled' WHERE id = %s", (first["id"],))
    assert create(T0 - timedelta(minutes=60)).status_code == 201
    other_hall = make_hall(regional_dsn, hall[0], rows=ROWS, name="Salle 2")
    in_other_hall = api.post(
        f"/halls/{other_hall}/shows", json=body(movie_id, T0), headers=auth.admin
    )
    assert in_other_hall.status_code == 201


def test_concurrent_overlapping_creations_give_one_201_and_one_409(
    api: httpx.Client, auth: Auth, hall: tuple[str, str, str]
) -> None:
    _, hall_id, movie_id = hall
    headers = auth.admin
    for attempt in range(3):
        starts = T0 + timedelta(days=attempt)
        barrier = threading.Barrier(2)

        def post(
            offset_minutes: int, starts: datetime = starts, barrier: threading.Barrier = barrier
        ) -> httpx.Response:
            payload = body(movie_id, starts + timedelta(minutes=offset_minutes))
            barrier.wait()
            return api.post(f"/halls/{hall_id}/shows", json=payload, headers=headers)

        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(post, [0, 30]))
        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 201).json()
        loser = next(r for r in responses if r.status_code == 409).json()
        assert loser["error"] == "show_overlap"
        assert loser["conflicting_show_id"] == winner["id"]
    listing = api.get("/shows", params={"cinema_id": hall[0]}).json()
    assert listing["total"] == 3


def test_who_may_schedule_shows(
    api: httpx.Client, auth: Auth, hall: tuple[str, str, str], regional_dsn: str
) -> None:
    cinema_id, hall_id, movie_id = hall
    other_cinema = make_cinema(regional_dsn)
    path = f"/halls/{hall_id}/shows"
    for headers, expected in [
        ({}, 401),
        (auth.customer, 403),
        (auth.staff(other_cinema), 403),
    ]:
        response = api.post(path, json=body(movie_id, T0), headers=headers)
        assert response.status_code == expected
        assert response.json()["error"] in {"unauthorized", "forbidden"}
    staff = api.post(path, json=body(movie_id, T0), headers=auth.staff(cinema_id))
    assert staff.status_code == 201
    admin = api.post(path, json=body(movie_id, T0 + SLOT), headers=auth.admin)
    assert admin.status_code == 201


def test_unknown_shows_are_404(api: httpx.Client) -> None:
    for path in (
        f"/shows/{new_id('show', 'eu-west')}",
        f"/shows/{new_id('show', 'eu-west')}/seats",
    ):
        response = api.get(path)
        assert (response.status_code, response.json()["error"]) == (404, "show_not_found")
    foreign = api.get(f"/shows/{new_id('show', 'us-east')}/seats")
    assert (foreign.status_code, foreign.json()["error"]) == (404, "wrong_region")
    assert api.get("/shows/%00").status_code == 404
