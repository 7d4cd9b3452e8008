"""Show listings (filters, pages, free counts) and seat availability, lapsed holds included."""

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from fastapi import FastAPI

from common.ids import new_id
from tests.regional_api.factories import (
    PRICES,
    make_cinema,
    make_hall,
    make_movie,
    make_show,
    seat_ids,
)
from tests.support.poll import wait_until

# 23:30 UTC on the 14th is already the 15th in Paris (UTC+1) but still the 14th in Lisbon.
LATE = datetime(2031, 3, 14, 23, 30, tzinfo=UTC)
ROWS = ["AA_AA", "AX_VV"]  # 8 seats, one blocked


def _mark(dsn: str, show_id: str, seats: dict[str, int], state: dict[str, str]) -> None:
    """Put seats of a show into `state` ({label: 'sold' | 'held-expired' | 'held'})."""
    now = datetime.now(UTC)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for label, status in state.items():
            reservation = new_id("res", "eu-west")
            until = now + timedelta(minutes=-5 if status == "held-expired" else 10)
            held = status.startswith("held")
            conn.execute(
                "INSERT INTO reservations (id, show_id, cinema_id, channel, status,"
                " hold_expires_at, amount_minor, currency, created_at, confirmed_at)"
                " SELECT %s, id, cinema_id, 'online', %s, %s, 0, 'EUR', now(), %s"
                " FROM shows WHERE id = %s",
                (
                    reservation,
                    "held" if held else "confirmed",
                    until,
                    None if held else now,
                    show_id,
                ),
            )
            conn.execute(
                "UPDATE show_seats SET status = %s, reservation_id = %s, held_until = %s"
                " WHERE show_id = %s AND seat_id = %s",
                (
                    "held" if held else "sold",
                    reservation,
                    until if held else None,
                    show_id,
                    seats[label],
                ),
            )


def test_listing_filters_pages_and_free_counts(api: httpx.Client, regional_dsn: str) -> None:
    paris = make_cinema(regional_dsn, city="Paris", timezone="Europe/Paris")
    lisbon = make_cinema(regional_dsn, city="Lisbon", timezone="Europe/Lisbon")
    paris_hall = make_hall(regional_dsn, paris, rows=ROWS)
    lisbon_hall = make_hall(regional_dsn, lisbon, rows=ROWS)
    alien = make_movie(regional_dsn, title="Alien", duration_minutes=100)
    heat = make_movie(regional_dsn, title="Heat", duration_minutes=170)
    late_paris = make_show(regional_dsn, paris_hall, alien, starts_at=LATE)
    late_lisbon = make_show(regional_dsn, lisbon_hall, heat, starts_at=LATE + timedelta(minutes=1))
    next_day = make_show(regional_dsn, paris_hall, heat, starts_at=LATE + timedelta(days=1))
    canceled = make_show(regional_dsn, lisbon_hall, alien, starts_at=LATE + timedelta(days=2))
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute("UPDATE shows SET status = 'canceled' WHERE id = %s", (canceled,))
    seats = seat_ids(regional_dsn, paris_hall)
    _mark(regional_dsn, late_paris, seats, {"A1": "sold", "A2": "held", "A3": "held-expired"})

    def ids(path: str = "/shows", **params: str | int | bool) -> list[str]:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [late_paris, late_lisbon, next_day]
    assert ids(include_canceled=True) == [late_paris, late_lisbon, next_day, canceled]
    assert ids(cinema_id=paris) == [late_paris, next_day]
    assert ids(f"/cinemas/{lisbon}/shows") == [late_lisbon]
    assert ids(movie_id=heat) == [late_lisbon, next_day]
    assert ids(q="ALI") == [late_paris]
    assert ids(q="%") == ids(q="A_ien") == []  # wildcards are literal
    assert ids(city="lisbon") == [late_lisbon]
    # Dates are days in each cinema's own timezone.
    assert ids(date_from="2031-03-15", date_to="2031-03-15") == [late_paris]
    assert ids(date_from="2031-03-16") == [next_day]
    assert ids(date_to="2031-03-14") == [late_lisbon]

    page = api.get("/shows", params={"limit": 2, "offset": 1}).json()
    assert ([item["id"] for item in page["items"]], page["total"]) == ([late_lisbon, next_day], 3)
    beyond = api.get("/shows", params={"offset": 10}).json()
    assert (beyond["items"], beyond["total"]) == ([], 3)

    counts = {
        item["id"]: (item["seat_count"], item["free_seats"])
        for item in api.get("/shows").json()["items"]
    }
    # 7 sellable seats; A1 sold and A2 held are taken, A3's hold lapsed so it is free again.
    assert counts[late_paris] == (7, 5)
    assert counts[next_day] == (7, 7)
    item = api.get("/shows", params={"cinema_id": paris}).json()["items"][0]
    assert item["starts_at_local"] == "2031-03-15T00:30:00+01:00"


def test_bad_listing_queries_are_422(api: httpx.Client) -> None:
    cases: list[tuple[dict[str, str | int], str]] = [
        ({"cinema_id": new_id("cin", "us-east")}, "wrong_region"),
        ({"cinema_id": "nope"}, "not_found"),
        ({"movie_id": new_id("cin", "eu-west")}, "not_found"),
        ({"date_from": "2031-03-15", "date_to": "2031-03-14"}, "invalid_date_range"),
        ({"date_from": "tomorrow"}, "validation_error"),
        ({"limit": 201}, "validation_error"),
        ({"offset": -1}, "validation_error"),
        ({"q": "x\x00"}, "validation_error"),
        ({"city": "\x00"}, "validation_error"),
    ]
    for params, error in cases:
        response = api.get("/shows", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"] == error, params


def test_availability_lists_every_seat_and_lapsed_holds_turn_free(
    api: httpx.Client, app: FastAPI, regional_dsn: str
) -> None:
    cinema = make_cinema(regional_dsn)
    hall = make_hall(regional_dsn, cinema, rows=ROWS)
    show = make_show(regional_dsn, hall, make_movie(regional_dsn), starts_at=LATE)
    seats = seat_ids(regional_dsn, hall)
    _mark(regional_dsn, show, seats, {"A1": "sold", "A2": "held"})

    response = api.get(f"/shows/{show}/seats")
    assert response.status_code == 200, response.text
    seat_map = response.json()
    assert (seat_map["grid_rows"], seat_map["grid_cols"], seat_map["currency"]) == (2, 5, "EUR")
    assert seat_map["show_status"] == "scheduled"
    by_label = {seat["label"]: seat for seat in seat_map["seats"]}
    assert list(by_label) == ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4"]
    assert by_label["A1"]["status"] == "sold"
    assert by_label["A2"]["status"] == "held"
    assert by_label["B2"] | {"seat_id": 0} == {
        "seat_id": 0,
        "label": "B2",
        "row_label": "B",
        "number": 2,
        "grid_row": 1,
        "grid_col": 1,
        "seat_type": "standard",
        "price_minor": 1000,
        "status": "blocked",
    }
    assert by_label["B3"]["seat_type"] == "vip"
    assert by_label["B3"]["price_minor"] == PRICES["vip"]
    assert seat_map["counts"] == {"free": 5, "held": 1, "sold": 1, "blocked": 1}

    # No sweeper runs here: the hold lapses by the availability rule alone.
    app.state.clock.advance(timedelta(minutes=11))
    later = api.get(f"/shows/{show}/seats").json()
    assert {s["label"]: s["status"] for s in later["seats"]}["A2"] == "free"
    assert later["counts"] == {"free": 6, "held": 0, "sold": 1, "blocked": 1}
    assert api.get(f"/shows/{show}").json()["free_seats"] == 6


def test_seat_map_answers_304_until_a_seat_changes(api: httpx.Client, regional_dsn: str) -> None:
    cinema = make_cinema(regional_dsn)
    hall = make_hall(regional_dsn, cinema, rows=ROWS)
    show = make_show(regional_dsn, hall, make_movie(regional_dsn), starts_at=LATE)
    first = api.get(f"/shows/{show}/seats")
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert first.headers["cache-control"] == "no-cache"
    same = api.get(f"/shows/{show}/seats", headers={"If-None-Match": etag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    weak = api.get(f"/shows/{show}/seats", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    _mark(regional_dsn, show, seat_ids(regional_dsn, hall), {"A1": "sold"})
    # Sold behind the replica's back (SQL): its cached map shows it within the cache's bound.
    answers: list[httpx.Response] = []

    def answered_200() -> bool:
        answers.append(api.get(f"/shows/{show}/seats", headers={"If-None-Match": etag}))
        return answers[-1].status_code == 200

    wait_until(answered_200, timeout=10)
    changed = answers[-1]
    assert changed.headers["etag"] != etag
    assert {s["label"]: s["status"] for s in changed.json()["seats"]}["A1"] == "sold"
    too_long = api.get(f"/shows/{show}/seats", headers={"If-None-Match": "x" * 2000})
    assert too_long.status_code == 422
