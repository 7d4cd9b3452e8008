"""Counter sales in one step and ticket check-in at the door, over HTTP on a real database."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx

from regional_api.payments.provider import CARD_DECLINED, CARD_TIMEOUT
from regional_api.reservations.service import cancel_reservation
from schemas.auth import Role
from tests.regional_api.factories import (
    GOOD_CARD,
    PRICES,
    ShowSeed,
    hold,
    make_cinema,
    query,
    run_db,
    seed_show,
)
from tests.regional_api.served import Live


def staff(live: Live, show: ShowSeed) -> dict[str, str]:
    return live.issuer.headers(sub="user-clerk", role=Role.staff, cinemas=(show.cinema_id,))


def sell(live: Live, show: ShowSeed, body: dict[str, Any], **headers: str) -> Any:
    response = live.client.post(
        f"/shows/{show.show_id}/sales", json=body, headers=staff(live, show) | headers
    )
    return {"status": response.status_code, **response.json()}


def test_cash_sale_without_customer_sells_in_one_step(live: Live, show: ShowSeed) -> None:
    answer = sell(live, show, {"seat_ids": show.ids("A1", "B1"), "method": "cash"})

    assert answer["status"] == 201
    assert answer["amount_minor"] == PRICES["standard"] + PRICES["vip"]
    assert answer["payment"]["status"] == "completed"
    assert answer["payment"]["method"] == "cash"
    assert answer["user_id"] is None
    assert len({ticket["code"] for ticket in answer["tickets"]}) == 2
    rows = query(
        live.dsn,
        "SELECT channel, status, hold_expires_at FROM reservations WHERE id = %s",
        answer["reservation_id"],
    )
    assert rows == [("box_office", "confirmed", None)]
    assert query(
        live.dsn,
        "SELECT count(*) FROM show_seats WHERE show_id = %s AND status = 'sold'",
        show.show_id,
    ) == [(2,)]


def test_card_sale_for_a_customer_shows_in_their_tickets(live: Live, show: ShowSeed) -> None:
    body = {
        "seat_ids": show.ids("A2"),
        "method": "card",
        "card_number": GOOD_CARD,
        "customer_email": "bob@example.com",
        "user_id": "user-bob",
    }
    answer = sell(live, show, body)

    assert answer["status"] == 201
    assert (answer["user_id"], answer["customer_email"]) == ("user-bob", "bob@example.com")
    bob = live.issuer.headers(sub="user-bob")
    tickets = live.client.get(f"/reservations/{answer['reservation_id']}/tickets", headers=bob)
    assert [t["code"] for t in tickets.json()["tickets"]] == [answer["tickets"][0]["code"]]


def test_a_refused_charge_leaves_nothing_held(live: Live, show: ShowSeed) -> None:
    for card in (CARD_DECLINED, CARD_TIMEOUT):
        body = {"seat_ids": show.ids("A1"), "method": "card", "card_number": card}
        answer = sell(live, show, body)

        assert (answer["status"], answer["error"]) == (402, "payment_failed")
        # The charge ran with nothing locked: the failed sale stays on record, canceled.
        assert query(live.dsn, "SELECT DISTINCT status FROM reservations") == [("canceled",)]
        assert query(
            live.dsn, "SELECT status FROM show_seats WHERE seat_id = %s", show.seats["A1"]
        ) == [("free",)]


def test_a_taken_seat_fails_the_whole_sale(live: Live, show: ShowSeed) -> None:
    held = hold(live.dsn, show, ["A2"], user_id="user-alice", now=live.now())

    answer = sell(live, show, {"seat_ids": show.ids("A1", "A2"), "method": "cash"})

    assert (answer["status"], answer["error"]) == (409, "seats_taken")
    assert query(live.dsn, "SELECT id FROM reservations") == [(held,)]
    assert query(
        live.dsn, "SELECT status FROM show_seats WHERE seat_id = %s", show.seats["A1"]
    ) == [("free",)]
    blocked = sell(live, show, {"seat_ids": show.ids("A5"), "method": "cash"})
    assert (blocked["status"], blocked["error"]) == (409, "seats_taken")


def test_concurrent_sales_of_one_seat_sell_it_once(live: Live, show: ShowSeed) -> None:
    body = {"seat_ids": show.ids("B2"), "method": "cash"}
    headers = staff(live, show)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=str(live.client.base_url), timeout=10) as client:
            return client.post(
                f"/shows/{show.show_id}/sales", json=body, headers=headers
            ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))

    assert statuses == [201, 409, 409, 409, 409, 409]
    assert query(live.dsn, "SELECT count(*) FROM payments") == [(1,)]


def test_a_retried_sale_with_the_same_key_sells_once(live: Live, show: ShowSeed) -> None:
    body = {"seat_ids": show.ids("A3"), "method": "card", "card_number": GOOD_CARD}

    first = sell(live, show, body, **{"Idempotency-Key": "sale-1"})
    second = sell(live, show, body, **{"Idempotency-Key": "sale-1"})

    assert first["status"] == second["status"] == 201
    assert first == second
    assert len(live.provider.charges) == 1
    assert query(live.dsn, "SELECT count(*) FROM reservations") == [(1,)]


BAD_SALES: list[tuple[dict[str, Any], str]] = [
    ({"seat_ids": [], "method": "cash"}, "validation_error"),
    ({"seat_ids": [1, 1], "method": "cash"}, "validation_error"),
    ({"seat_ids": [0], "method": "cash"}, "validation_error"),
    ({"seat_ids": [2**70], "method": "cash"}, "validation_error"),
    ({"seat_ids": ["x"], "method": "cash"}, "validation_error"),
    ({"seat_ids": [1], "method": "online"}, "validation_error"),
    ({"seat_ids": [1], "method": "cash", "amount_minor": 0}, "validation_error"),
    ({"seat_ids": [1], "method": "cash", "customer_email": "nope"}, "validation_error"),
    ({"seat_ids": [1], "method": "card"}, "invalid_card_number"),
    ({"seat_ids": [1], "method": "card", "card_number": 4242424242424242}, "validation_error"),
    ({"seat_ids": 1, "method": "cash"}, "validation_error"),
    ({"seat_ids": [1], "method": "cash", "user_id": ""}, "validation_error"),
    ({"seat_ids": [1], "method": "card", "card_number": "1234567890123"}, "invalid_card_number"),
    ({"seat_ids": [1], "method": "cash", "card_number": GOOD_CARD}, "invalid_card_number"),
    ({"seat_ids": [999999999], "method": "cash"}, "unknown_seats"),
]


def test_bad_sales_are_refused(live: Live, show: ShowSeed) -> None:
    answers = [sell(live, show, body) for body, _ in BAD_SALES]

    assert [(a["status"], a["error"]) for a in answers] == [(422, e) for _, e in BAD_SALES]
    assert query(live.dsn, "SELECT count(*) FROM reservations") == [(0,)]


def test_only_staff_of_the_cinema_sell(live: Live, show: ShowSeed) -> None:
    body = {"seat_ids": show.ids("A1"), "method": "cash"}
    url = f"/shows/{show.show_id}/sales"
    other = live.issuer.headers(role=Role.staff, cinemas=("cin-eu-west-000000000000",))

    assert live.client.post(url, json=body).status_code == 401
    assert live.client.post(url, json=body, headers=live.issuer.headers()).status_code == 403
    assert live.client.post(url, json=body, headers=other).status_code == 403
    missing = live.client.post(
        "/shows/show-eu-west-000000000000/sales", json=body, headers=staff(live, show)
    )
    assert (missing.status_code, missing.json()["error"]) == (404, "show_not_found")
    admin = live.issuer.headers(role=Role.admin)
    assert live.client.post(url, json=body, headers=admin).status_code == 201


def validate(live: Live, cinema_id: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = live.client.post(
        f"/cinemas/{cinema_id}/tickets/validate", json=body, headers=headers
    )
    return {"status": response.status_code, **response.json()}


DOORS_OPEN = timedelta(hours=23, minutes=30)  # the seeded show starts a day after seeding


def test_a_ticket_checks_in_once_while_the_doors_are_open(live: Live, show: ShowSeed) -> None:
    sale = sell(live, show, {"seat_ids": show.ids("A1", "A2"), "method": "cash"})
    code, unused = (ticket["code"] for ticket in sale["tickets"])
    headers = staff(live, show)

    early = validate(live, show.cinema_id, {"code": code}, headers)
    live.advance(DOORS_OPEN)
    first = validate(live, show.cinema_id, {"code": code, "show_id": show.show_id}, headers)
    second = validate(live, show.cinema_id, {"code": code}, headers)
    live.advance(timedelta(hours=3))
    late = validate(live, show.cinema_id, {"code": unused}, headers)

    assert (early["status"], early["error"]) == (409, "too_early")
    assert first["status"] == 200
    assert (first["seat_label"], first["show_id"]) == ("A1", show.show_id)
    assert (second["status"], second["error"]) == (409, "ticket_already_used")
    assert second["used_at"] == first["checked_in_at"].replace("Z", "+00:00")
    assert (late["status"], late["error"]) == (409, "show_over")


def test_two_scanners_racing_on_one_ticket_admit_once(live: Live, show: ShowSeed) -> None:
    sale = sell(live, show, {"seat_ids": show.ids("B1"), "method": "cash"})
    url = f"/cinemas/{show.cinema_id}/tickets/validate"
    body, headers = {"code": sale["tickets"][0]["code"]}, staff(live, show)
    live.advance(DOORS_OPEN)

    def scan(_: int) -> int:
        with httpx.Client(base_url=str(live.client.base_url), timeout=10) as client:
            return client.post(url, json=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(scan, range(4))) == [200, 409, 409, 409]


def test_tickets_are_refused_at_the_wrong_door_or_when_canceled(
    live: Live, regional_dsn: str, show: ShowSeed
) -> None:
    sale = sell(live, show, {"seat_ids": show.ids("A1"), "method": "cash"})
    code = sale["tickets"][0]["code"]
    other_cinema = make_cinema(regional_dsn)
    other_show = seed_show(regional_dsn, cinema_id=show.cinema_id)
    admin = live.issuer.headers(role=Role.admin)
    live.advance(DOORS_OPEN)

    wrong_cinema = validate(live, other_cinema, {"code": code}, admin)
    wrong_show = validate(
        live, show.cinema_id, {"code": code, "show_id": other_show.show_id}, admin
    )
    unknown = validate(live, show.cinema_id, {"code": "no-such-code"}, admin)
    foreign_staff = validate(
        live,
        show.cinema_id,
        {"code": code},
        live.issuer.headers(role=Role.staff, cinemas=(other_cinema,)),
    )
    customer = validate(live, show.cinema_id, {"code": code}, live.issuer.headers())

    assert (wrong_cinema["status"], wrong_cinema["error"]) == (409, "wrong_cinema")
    assert (wrong_show["status"], wrong_show["error"]) == (409, "wrong_show")
    assert (unknown["status"], unknown["error"]) == (404, "ticket_not_found")
    assert foreign_staff["status"] == 403
    assert customer["status"] == 403
    assert validate(live, show.cinema_id, {"code": ""}, admin)["status"] == 422
    assert validate(live, show.cinema_id, {"code": code, "seat": 1}, admin)["status"] == 422
    assert query(live.dsn, "SELECT checked_in_at FROM reservation_seats") == [(None,)]
    assert validate(live, show.cinema_id, {"code": code}, admin)["status"] == 200

    canceled = sell(live, show, {"seat_ids": show.ids("A2"), "method": "cash"})
    rid = canceled["reservation_id"]
    run_db(
        live.dsn,
        lambda session: cancel_reservation(
            session, reservation_id=rid, now=live.now(), reason="test"
        ),
    )
    refused = validate(live, show.cinema_id, {"code": canceled["tickets"][0]["code"]}, admin)
    assert (refused["status"], refused["error"]) == (409, "ticket_canceled")
