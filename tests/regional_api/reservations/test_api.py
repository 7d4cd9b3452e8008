"""Holds and reservations over HTTP: happy paths, conflicts, expiry by clock, roles, bad input."""

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI

from harness import tokens
from harness.live import live_server
from schemas.auth import Role
from tests.regional_api.factories import ShowSeed, grid_rows, seed_show
from tests.regional_api.reservations.conftest import make_app

CARD = {"method": "card", "card_number": "4242424242424242"}


def hold(
    client: httpx.Client, show: ShowSeed, headers: dict[str, str], *labels: str
) -> httpx.Response:
    return client.post(
        f"/shows/{show.show_id}/holds", json={"seat_ids": show.ids(*labels)}, headers=headers
    )


def pay(client: httpx.Client, rid: str, headers: dict[str, str]) -> httpx.Response:
    return client.post(f"/reservations/{rid}/payments", json=CARD, headers=headers)


def test_hold_then_read(client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer) -> None:
    me = issuer.headers(sub="alice")
    response = hold(client, show, me, "E5", "E6")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "held"
    assert body["id"].startswith("res-eu-west-")
    assert [s["label"] for s in body["seats"]] == ["E5", "E6"]
    assert body["amount_minor"] == 2 * 1000
    assert body["currency"] == "EUR"
    assert body["extensions_left"] == 2
    assert body["hold_expires_at"]
    assert body["movie_title"] == "The Test Movie"
    assert client.get(f"/reservations/{body['id']}", headers=me).json() == body
    taken = hold(client, show, issuer.headers(sub="bob"), "E6", "E7")
    assert taken.status_code == 409
    assert taken.json()["error"] == "seats_taken"
    assert taken.json()["seats"] == ["E6"]


BAD_HOLD_BODIES: list[Any] = [
    {"seat_ids": []},
    {"seat_ids": [-1]},
    {"seat_ids": [0]},
    {"seat_ids": [2**70]},
    {"seat_ids": [1, 1]},
    {"seat_ids": list(range(1, 200))},
    {"seat_ids": "A1"},
    {"seat_ids": [1], "price": 0},
    {},
    [1, 2],
    None,
]


def test_bad_hold_bodies(client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer) -> None:
    for payload in BAD_HOLD_BODIES:
        response = client.post(
            f"/shows/{show.show_id}/holds", json=payload, headers=issuer.headers()
        )
        assert response.status_code == 422, payload
        assert response.json()["error"] == "validation_error"
    garbage = client.post(
        f"/shows/{show.show_id}/holds",
        content=b"\xff{not json",
        headers={**issuer.headers(), "content-type": "application/json"},
    )
    assert garbage.status_code in (400, 422)
    assert garbage.json()["error"]


def test_bad_paths_and_inputs(
    client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    me = issuer.headers()
    for show_id in ("nope", "show-us-east-k3v9q2m8x7p4", "show-eu-west-k3v9q2m8x7p4", "x" * 500):
        response = client.post(f"/shows/{show_id}/holds", json={"seat_ids": [1]}, headers=me)
        assert response.status_code == 404, show_id
    unknown = client.post(f"/shows/{show.show_id}/holds", json={"seat_ids": [10**12]}, headers=me)
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "unknown_seats"
    for payload in ({"count": 0}, {"count": 51}, {"count": 2, "seat_type": "sofa"}, {"n": 1}):
        response = client.post(f"/shows/{show.show_id}/best-available", json=payload, headers=me)
        assert response.status_code == 422, payload
    for rid in ("res-eu-west-k3v9q2m8x7p4", "bogus"):
        assert client.get(f"/reservations/{rid}", headers=me).status_code == 404
    assert client.get("/me/reservations?limit=0", headers=me).status_code == 422
    assert client.get("/me/reservations?offset=-1", headers=me).status_code == 422
    bad_key = {**me, "Idempotency-Key": "x" * 201}
    response = hold(client, show, bad_key, "A3")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_idempotency_key"


def test_anonymous_is_refused(client: httpx.Client, show: ShowSeed) -> None:
    assert hold(client, show, {}, "A2").status_code == 401
    assert (
        client.post(f"/shows/{show.show_id}/best-available", json={"count": 2}).status_code == 401
    )
    assert client.get("/me/reservations").status_code == 401
    assert client.get("/reservations/res-eu-west-k3v9q2m8x7p4").status_code == 401
    assert hold(client, show, {"Authorization": "Bearer junk"}, "A2").status_code == 401


def test_best_available_prefers_centre(
    client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    response = client.post(
        f"/shows/{show.show_id}/best-available", json={"count": 3}, headers=issuer.headers()
    )
    assert response.status_code == 201, response.text
    labels = [s["label"] for s in response.json()["seats"]]
    assert len(labels) == 3
    assert len({label[0] for label in labels}) == 1
    assert labels[0][0] == "F"  # about two thirds back in an 8-row hall
    vip = client.post(
        f"/shows/{show.show_id}/best-available",
        json={"count": 2, "seat_type": "vip"},
        headers=issuer.headers(),
    )
    assert {s["seat_type"] for s in vip.json()["seats"]} == {"vip"}
    too_many = client.post(
        f"/shows/{show.show_id}/best-available",
        json={"count": 7},  # wider than any aisle-free block
        headers=issuer.headers(role=Role.admin),
    )
    assert too_many.status_code == 409
    assert too_many.json()["error"] == "no_adjacent_seats"


def test_expiry_by_clock_then_pay(
    app: FastAPI, client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    alice, bob = issuer.headers(sub="alice"), issuer.headers(sub="bob")
    first = hold(client, show, alice, "C1", "C2").json()["id"]
    late = hold(client, show, alice, "C3").json()["id"]
    app.state.clock.advance(timedelta(minutes=11))
    assert client.get(f"/reservations/{first}", headers=alice).json()["status"] == "expired"
    assert hold(client, show, bob, "C2").status_code == 201  # the lapsed hold counts as free
    refused = pay(client, first, alice)
    assert refused.status_code == 409
    assert refused.json()["error"] == "hold_expired"
    paid = pay(client, late, alice)  # after the deadline, but the seat is still free
    assert paid.status_code == 201, paid.text
    read = client.get(f"/reservations/{late}", headers=alice).json()
    assert read["status"] == "confirmed"
    assert read["seats"][0]["ticket_code"]


def test_extend_and_release(
    app: FastAPI, client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    me = issuer.headers(sub="carol")
    body = hold(client, show, me, "D4").json()
    rid, deadline = body["id"], body["hold_expires_at"]
    first = client.post(f"/reservations/{rid}/extend", headers=me).json()
    assert first["hold_expires_at"] > deadline
    assert first["extensions_left"] == 1
    second = client.post(f"/reservations/{rid}/extend", headers=me)
    assert second.status_code == 200
    assert second.json()["extensions_left"] == 0
    refused = client.post(f"/reservations/{rid}/extend", headers=me)
    assert refused.status_code == 409
    assert refused.json()["error"] == "extension_refused"
    released = client.post(f"/reservations/{rid}/release", headers=me).json()
    assert released["status"] == "canceled"
    assert hold(client, show, issuer.headers(), "D4").status_code == 201
    again = client.post(f"/reservations/{rid}/release", headers=me)
    assert again.status_code == 409


def test_other_people_see_nothing(
    client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    owner = issuer.headers(sub="owner")
    rid = hold(client, show, owner, "B7").json()["id"]
    other = issuer.headers(sub="mallory")
    stranger_staff = issuer.headers(role=Role.staff, cinemas=("cin-eu-west-zzzzzzzzzzzz",))
    for headers in (other, stranger_staff):
        assert client.get(f"/reservations/{rid}", headers=headers).status_code == 404
        for action in ("extend", "release", "cancel"):
            assert client.post(f"/reservations/{rid}/{action}", headers=headers).status_code == 404
        response = client.get(f"/shows/{show.show_id}/reservations", headers=headers)
        assert response.status_code == 403
        assert client.post(f"/shows/{show.show_id}/cancel", headers=headers).status_code == 403
    staff = issuer.headers(role=Role.staff, cinemas=(show.cinema_id,))
    assert client.get(f"/reservations/{rid}", headers=staff).status_code == 200
    listing = client.get(f"/shows/{show.show_id}/reservations", headers=staff).json()
    assert [item["id"] for item in listing["items"]] == [rid]
    assert client.get("/me/reservations", headers=other).json()["items"] == []


def test_seat_cap(client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer) -> None:
    me = issuer.headers(sub="dave")
    assert hold(client, show, me, "A3", "A4", "A5", "A6").status_code == 201
    capped = hold(client, show, me, "B3", "B4", "B5")
    assert capped.status_code == 409
    assert capped.json()["error"] == "seat_cap_exceeded"
    assert hold(client, show, me, "B3", "B4").status_code == 201
    staff = issuer.headers(role=Role.staff, cinemas=(show.cinema_id,))
    assert hold(client, show, staff, *[f"H{n}" for n in range(1, 9)]).status_code == 201


def test_my_reservations_newest_first(
    client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    me = issuer.headers(sub="erin")
    ids = [hold(client, show, me, label).json()["id"] for label in ("G1", "G2", "G3")]
    page = client.get("/me/reservations?limit=2", headers=me).json()
    assert [i["id"] for i in page["items"]] == ids[::-1][:2]
    rest = client.get(f"/me/reservations?limit=2&before={page['next_before']}", headers=me).json()
    assert [i["id"] for i in rest["items"]] == ids[:1]
    assert rest["next_before"] is None
    assert rest["items"][0]["movie_title"] == "The Test Movie"


def test_holds_refused_on_started_or_canceled_show(
    regional_dsn: str, client: httpx.Client, issuer: tokens.TestIssuer
) -> None:
    started = seed_show(
        regional_dsn, rows=grid_rows(), starts_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    response = hold(client, started, issuer.headers(), "A2")
    assert response.status_code == 409
    assert response.json()["reason"] == "started"
    show = seed_show(regional_dsn, rows=grid_rows())
    admin = issuer.headers(role=Role.admin)
    assert client.post(f"/shows/{show.show_id}/cancel", headers=admin).status_code == 200
    response = hold(client, show, issuer.headers(), "A2")
    assert response.status_code == 409
    assert response.json()["reason"] == "canceled"


def test_customer_cancel_and_show_cancel_refund(
    regional_dsn: str, client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    me = issuer.headers(sub="frank")
    held = hold(client, show, me, "C7").json()["id"]
    refused = client.post(f"/reservations/{held}/cancel", headers=me)
    assert refused.status_code == 409  # held: release it instead
    paid = hold(client, show, me, "C8", "C9").json()["id"]
    assert pay(client, paid, me).status_code == 201
    canceled = client.post(f"/reservations/{paid}/cancel", json={"reason": "sick"}, headers=me)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["refund_minor"] == 2000
    assert hold(client, show, issuer.headers(), "C8", "C9").status_code == 201
    other = hold(client, show, me, "D9").json()["id"]
    assert pay(client, other, me).status_code == 201
    staff = issuer.headers(role=Role.staff, cinemas=(show.cinema_id,))
    result = client.post(
        f"/shows/{show.show_id}/cancel", json={"reason": "projector"}, headers=staff
    )
    assert result.status_code == 200, result.text
    assert result.json()["canceled_reservations"] == 3  # C7 held, C8+C9 by someone, D9 paid
    assert result.json()["refunded_reservations"] == 1
    with psycopg.connect(regional_dsn) as conn:
        busy = conn.execute(
            "SELECT count(*) FROM show_seats WHERE show_id = %s AND status <> 'free'",
            (show.show_id,),
        ).fetchone()
    assert busy == (0,)
    assert client.post(f"/shows/{show.show_id}/cancel", headers=staff).status_code == 409


def test_customer_cancel_cutoff(
    regional_dsn: str, client: httpx.Client, issuer: tokens.TestIssuer
) -> None:
    show = seed_show(
        regional_dsn, rows=grid_rows(), starts_at=datetime.now(UTC) + timedelta(minutes=30)
    )
    me = issuer.headers(sub="gina")
    rid = hold(client, show, me, "A2").json()["id"]
    assert pay(client, rid, me).status_code == 201
    late = client.post(f"/reservations/{rid}/cancel", headers=me)
    assert late.status_code == 409
    assert late.json()["error"] == "cancel_too_late"
    staff = issuer.headers(role=Role.staff, cinemas=(show.cinema_id,))
    assert client.post(f"/reservations/{rid}/cancel", headers=staff).status_code == 200


def test_sweeper_expires_lapsed_holds(
    regional_dsn: str, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    app = make_app(regional_dsn, issuer, sweeper_interval_seconds=0.05)
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        rid = hold(client, show, issuer.headers(sub="sweepy"), "B1", "B2").json()["id"]
        app.state.clock.advance(timedelta(minutes=11))
        with psycopg.connect(regional_dsn, autocommit=True) as conn:
            for _ in range(200):  # the background job runs every 50 ms; wait for its effect
                row = conn.execute("SELECT status FROM reservations WHERE id = %s", (rid,))
                if row.fetchone() == ("expired",):
                    break
                threading.Event().wait(0.05)
            busy = conn.execute(
                "SELECT count(*) FROM show_seats WHERE reservation_id = %s", (rid,)
            ).fetchone()
        assert busy == (0,)
        metrics = client.get("/metrics").text
        assert 'reservation_expiries_total{by="sweeper"}' in metrics
        assert 'reservation_holds_total{kind="seats",outcome="ok"}' in metrics
