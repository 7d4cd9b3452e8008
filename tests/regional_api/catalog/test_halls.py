"""Halls over HTTP: create from a layout, read the seat map, replace it, and who may do so."""

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from fastapi import FastAPI

from common.ids import new_id
from tests.regional_api.catalog.conftest import Auth
from tests.regional_api.factories import make_cinema, make_hall, make_movie, make_show

LAYOUT = {
    "name": "Hall 1",
    "rows": ["AA_AAAA_AA", "PP_PPPP_PP", "VV_VVVV_VV", "WC______AX"],
    "legend": {
        "A": "standard",
        "P": "premium",
        "V": "vip",
        "W": "wheelchair",
        "C": "companion",
        "X": "standard-blocked",
    },
}


def test_create_then_read_the_seat_map(api: httpx.Client, auth: Auth, regional_dsn: str) -> None:
    cinema_id = make_cinema(regional_dsn)
    created = api.post(f"/cinemas/{cinema_id}/halls", json=LAYOUT, headers=auth.admin)
    assert created.status_code == 201, created.text
    hall = created.json()
    assert hall["id"].startswith("hall-eu-west-")
    assert (hall["seat_count"], hall["grid_rows"], hall["grid_cols"]) == (28, 4, 10)
    assert hall["seat_types"] == ["companion", "premium", "standard", "vip", "wheelchair"]
    assert [row["label"] for row in hall["rows"]] == ["A", "B", "C", "D"]
    row_d = hall["rows"][3]["seats"]
    assert [(s["label"], s["grid_col"], s["seat_type"], s["blocked"]) for s in row_d] == [
        ("D1", 0, "wheelchair", False),
        ("D2", 1, "companion", False),
        ("D3", 8, "standard", False),
        ("D4", 9, "standard", True),
    ]
    assert hall["layout"]["rows"] == LAYOUT["rows"]

    read = api.get(f"/halls/{hall['id']}")
    assert read.status_code == 200
    assert read.json()["rows"] == hall["rows"]
    listing = api.get(f"/cinemas/{cinema_id}/halls").json()
    assert [(h["id"], h["seat_count"]) for h in listing] == [(hall["id"], 28)]

    again = api.post(f"/cinemas/{cinema_id}/halls", json=LAYOUT, headers=auth.admin)
    assert (again.status_code, again.json()["error"]) == (409, "hall_name_taken")
    other = make_hall(regional_dsn, cinema_id, name="Hall 2")
    renamed = api.put(f"/halls/{other}", json=LAYOUT, headers=auth.admin)
    assert (renamed.status_code, renamed.json()["error"]) == (409, "hall_name_taken")
    assert api.get(f"/halls/{other}").json()["name"] == "Hall 2"


def test_leading_spaces_position_seats(api: httpx.Client, auth: Auth, regional_dsn: str) -> None:
    cinema_id = make_cinema(regional_dsn)
    body = {"name": "Small", "rows": ["  AA", "AAAA"], "row_labels": ["r", "s"]}
    hall = api.post(f"/cinemas/{cinema_id}/halls", json=body, headers=auth.admin).json()
    first_row = hall["rows"][0]
    assert first_row["label"] == "R"
    assert [s["grid_col"] for s in first_row["seats"]] == [2, 3]


def test_bad_layouts_are_422_with_a_reason(
    api: httpx.Client, auth: Auth, regional_dsn: str
) -> None:
    path = f"/cinemas/{make_cinema(regional_dsn)}/halls"
    cases = [
        ({**LAYOUT, "rows": ["AA?"]}, "invalid_layout", "unknown_legend_char"),
        ({**LAYOUT, "rows": []}, "invalid_layout", "no_rows"),
        ({**LAYOUT, "rows": ["___"]}, "invalid_layout", "no_seats"),
        ({**LAYOUT, "row_labels": ["A", "A", "B", "C"]}, "invalid_layout", "duplicate_row_label"),
        ({**LAYOUT, "rows": ["A" * 81]}, "invalid_layout", "too_many_columns"),
        ({**LAYOUT, "rows": "AAAA"}, "validation_error", None),
        ({**LAYOUT, "name": "  "}, "validation_error", None),
        ({**LAYOUT, "colour": "red"}, "validation_error", None),
        ({**LAYOUT, "name": "Hall\u0000"}, "validation_error", None),
    ]
    for body, error, reason in cases:
        response = api.post(path, json=body, headers=auth.admin)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == error
        assert response.json().get("reason") == reason
    assert api.post(path, content=b"{not json", headers=auth.admin).status_code == 422


def test_replace_layout_unless_an_upcoming_show_uses_it(
    api: httpx.Client, auth: Auth, regional_dsn: str, app: FastAPI
) -> None:
    cinema_id = make_cinema(regional_dsn)
    hall_id = make_hall(regional_dsn, cinema_id, rows=["AAAA", "AAAA"])
    movie_id = make_movie(regional_dsn)
    past_show = make_show(
        regional_dsn, hall_id, movie_id, starts_at=datetime.now(UTC) - timedelta(days=2)
    )
    new_layout = {"name": "Renamed", "rows": ["PPP", "___", "VVV"]}

    replaced = api.put(f"/halls/{hall_id}", json=new_layout, headers=auth.staff(cinema_id))
    assert replaced.status_code == 200, replaced.text
    hall = replaced.json()
    assert (hall["name"], hall["seat_count"], hall["grid_rows"]) == ("Renamed", 6, 3)
    assert [row["label"] for row in hall["rows"]] == ["A", "B"]
    # The past show keeps its original eight seats (retired, not deleted).
    history = api.get(f"/shows/{past_show}/seats").json()
    assert len(history["seats"]) == 8
    assert (history["grid_rows"], history["grid_cols"]) == (3, 4)

    upcoming = make_show(regional_dsn, hall_id, movie_id, prices={"premium": 1, "vip": 2})
    refused = api.put(f"/halls/{hall_id}", json=LAYOUT, headers=auth.admin)
    assert refused.status_code == 409
    assert refused.json() | {"detail": ""} == {
        "error": "hall_in_use",
        "detail": "",
        "show_id": upcoming,
    }
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute("UPDATE shows SET status = 'canceled' WHERE id = %s", (upcoming,))
    assert api.put(f"/halls/{hall_id}", json=LAYOUT, headers=auth.admin).status_code == 200
    assert api.get(f"/halls/{hall_id}").json()["seat_count"] == 28


def test_who_may_create_and_replace_halls(api: httpx.Client, auth: Auth, regional_dsn: str) -> None:
    cinema_id, other = make_cinema(regional_dsn), make_cinema(regional_dsn)
    hall_id = make_hall(regional_dsn, cinema_id)
    create, replace = f"/cinemas/{cinema_id}/halls", f"/halls/{hall_id}"
    for headers, expected in [
        ({}, 401),
        (auth.customer, 403),
        (auth.staff(other), 403),
        ({"Authorization": "Bearer not-a-token"}, 401),
    ]:
        assert api.post(create, json=LAYOUT, headers=headers).status_code == expected
        assert api.put(replace, json=LAYOUT, headers=headers).status_code == expected
    forbidden = api.post(create, json=LAYOUT, headers=auth.customer).json()
    assert forbidden["error"] == "forbidden"
    staff = auth.staff(other, cinema_id)
    assert api.post(create, json=LAYOUT, headers=staff).status_code == 201
    assert api.put(replace, json=LAYOUT | {"name": "Other"}, headers=staff).status_code == 200
    assert api.put(replace, json=LAYOUT | {"name": "Admin"}, headers=auth.admin).status_code == 200


def test_unknown_halls_are_404(api: httpx.Client, auth: Auth) -> None:
    unknown = new_id("hall", "eu-west")
    response = api.get(f"/halls/{unknown}")
    assert (response.status_code, response.json()["error"]) == (404, "hall_not_found")
    assert api.put(f"/halls/{unknown}", json=LAYOUT, headers=auth.admin).status_code == 404
    foreign = api.get(f"/halls/{new_id('hall', 'us-east')}")
    assert (foreign.status_code, foreign.json()["error"]) == (404, "wrong_region")
