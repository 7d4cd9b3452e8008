"""Paying reservations over HTTP against a real database and the simulated provider."""

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx

from regional_api.payments.provider import (
    CARD_DECLINED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_TIMEOUT,
)
from schemas.auth import Role
from tests.regional_api.factories import GOOD_CARD, PRICES, ShowSeed, hold, query
from tests.regional_api.served import Live

USER = "user-alice"


def alice(live: Live) -> dict[str, str]:
    return live.issuer.headers(sub=USER)


def pay(live: Live, reservation_id: str, body: Mapping[str, object], **headers: str) -> Any:
    response = live.client.post(
        f"/reservations/{reservation_id}/payments", json=body, headers=alice(live) | headers
    )
    return {"status": response.status_code, **response.json()}


def test_card_payment_confirms_and_issues_one_ticket_per_seat(live: Live, show: ShowSeed) -> None:
    rid = hold(live.dsn, show, ["A1", "A2", "B1"], user_id=USER, now=live.now())

    answer = pay(live, rid, {"method": "card", "card_number": "4242 4242 4242 4242"})

    assert answer["status"] == 201
    payment = answer["payment"]
    assert payment["status"] == "completed"
    assert payment["amount_minor"] == 2 * PRICES["standard"] + PRICES["vip"]
    assert payment["currency"] == "EUR"
    assert payment["id"].startswith("pay-eu-west-")
    assert answer["reservation_status"] == "confirmed"
    codes = [ticket["code"] for ticket in answer["tickets"]]
    assert len(codes) == 3
    assert len(set(codes)) == 3
    assert all(len(code) >= 20 for code in codes)
    assert sorted(t["seat_label"] for t in answer["tickets"]) == ["A1", "A2", "B1"]
    assert query(
        live.dsn,
        "SELECT count(*) FROM show_seats WHERE reservation_id = %s AND status = 'sold'",
        rid,
    ) == [(3,)]

    read = live.client.get(f"/payments/{payment['id']}", headers=alice(live))
    assert read.status_code == 200
    assert read.json() == payment
    tickets = live.client.get(f"/reservations/{rid}/tickets", headers=alice(live)).json()
    assert tickets["status"] == "confirmed"
    assert sorted(t["code"] for t in tickets["tickets"]) == sorted(codes)


def test_refused_charges_are_recorded_and_keep_the_hold(live: Live, show: ShowSeed) -> None:
    rid = hold(live.dsn, show, ["A1"], user_id=USER, now=live.now())
    reasons = {}
    for card in (CARD_DECLINED, CARD_INSUFFICIENT_FUNDS, CARD_TIMEOUT):
        answer = pay(live, rid, {"method": "card", "card_number": card})
        assert answer["status"] == 402
        assert answer["error"] == "payment_failed"
        assert answer["payment"]["status"] == "failed"
        reasons[card] = answer["reason"]
        assert query(
            live.dsn,
            "SELECT status, reservation_id FROM show_seats WHERE seat_id = %s",
            show.seats["A1"],
        ) == [("held", rid)]

    assert reasons == {
        CARD_DECLINED: "card_declined",
        CARD_INSUFFICIENT_FUNDS: "insufficient_funds",
        CARD_TIMEOUT: "provider_timeout",
    }
    stored = query(
        live.dsn,
        "SELECT status, failure_reason FROM payments WHERE reservation_id = %s ORDER BY created_at, failure_reason",
        rid,
    )
    assert sorted(stored) == sorted(("failed", reason) for reason in reasons.values())
    assert (
        live.client.get(f"/reservations/{rid}/tickets", headers=alice(live)).json()["tickets"] == []
    )

    assert pay(live, rid, {"method": "card", "card_number": GOOD_CARD})["status"] == 201
    listed = live.client.get(f"/reservations/{rid}/payments", headers=alice(live)).json()
    assert [p["status"] for p in listed] == ["failed", "failed", "failed", "completed"]
    metrics = live.client.get("/metrics").text
    assert 'regional_payments_total{method="card",outcome="failed"}' in metrics
    assert 'regional_payments_total{method="card",outcome="completed"}' in metrics
    assert 'regional_revenue_minor_total{currency="EUR"}' in metrics


def test_a_second_payment_is_refused(live: Live, show: ShowSeed) -> None:
    rid = hold(live.dsn, show, ["A1"], user_id=USER, now=live.now())
    assert pay(live, rid, {"method": "online"})["status"] == 201

    again = pay(live, rid, {"method": "card", "card_number": GOOD_CARD})

    assert again["status"] == 409
    assert again["error"] == "already_paid"
    assert query(live.dsn, "SELECT count(*) FROM payments WHERE reservation_id = %s", rid) == [(1,)]


BAD_PAYMENTS: list[tuple[dict[str, object], int, str]] = [
    ({"method": "card", "card_number": GOOD_CARD, "amount_minor": 1}, 422, "validation_error"),
    ({"method": "card", "card_number": GOOD_CARD, "amount": 1}, 422, "validation_error"),
    ({"method": "bitcoin"}, 422, "validation_error"),
    ({}, 422, "validation_error"),
    ({"method": "card"}, 422, "invalid_card_number"),
    ({"method": "card", "card_number": "4242424242424241"}, 422, "invalid_card_number"),
    ({"method": "card", "card_number": "42424242abcd4242"}, 422, "invalid_card_number"),
    ({"method": "card", "card_number": "4" * 40}, 422, "validation_error"),
    ({"method": "card", "card_number": 4242424242424242}, 422, "validation_error"),
    ({"method": "card", "card_number": ["4242"]}, 422, "validation_error"),
    ({"method": "online", "card_number": GOOD_CARD}, 422, "invalid_card_number"),
    ({"method": "cash"}, 403, "cash_requires_staff"),
]


def test_bad_payment_requests_are_refused(live: Live, show: ShowSeed) -> None:
    rid = hold(live.dsn, show, ["A1"], user_id=USER, now=live.now())

    answers = [(body, pay(live, rid, body)) for body, _, _ in BAD_PAYMENTS]
    bad_key = pay(live, rid, {"method": "online"}, **{"Idempotency-Key": "x" * 201})
    not_json = live.client.post(f"/reservations/{rid}/payments", content=b"{", headers=alice(live))

    assert [(a["status"], a["error"]) for _, a in answers] == [(s, e) for _, s, e in BAD_PAYMENTS]
    assert (bad_key["status"], bad_key["error"]) == (422, "invalid_idempotency_key")
    assert not_json.status_code == 422
    assert query(live.dsn, "SELECT count(*) FROM payments") == [(0,)]


def test_callers_who_do_not_own_the_reservation_cannot_pay_or_look(
    live: Live, show: ShowSeed
) -> None:
    rid = hold(live.dsn, show, ["A1"], user_id=USER, now=live.now())
    url = f"/reservations/{rid}/payments"
    body = {"method": "card", "card_number": GOOD_CARD}
    other_staff = live.issuer.headers(role=Role.staff, cinemas=("cin-eu-west-000000000000",))

    assert live.client.post(url, json=body).status_code == 401
    assert live.client.post(url, json=body, headers=live.issuer.headers()).status_code == 404
    assert live.client.post(url, json=body, headers=other_staff).status_code == 404
    missing = live.client.post(
        "/reservations/res-eu-west-000000000000/payments", json=body, headers=alice(live)
    )
    assert (missing.status_code, missing.json()["error"]) == (404, "reservation_not_found")

    staff = live.issuer.headers(role=Role.staff, cinemas=(show.cinema_id,))
    paid = live.client.post(url, json={"method": "cash"}, headers=staff)
    assert paid.status_code == 201
    payment_id = paid.json()["payment"]["id"]
    assert (
        live.client.get(f"/payments/{payment_id}", headers=live.issuer.headers()).status_code == 404
    )
    assert live.client.get(f"/payments/{payment_id}", headers=other_staff).status_code == 404
    assert live.client.get(f"/payments/{payment_id}", headers=alice(live)).status_code == 200
    assert live.client.get("/payments/nope", headers=alice(live)).status_code == 404
    assert live.client.get(f"/reservations/{rid}/tickets", headers=other_staff).status_code == 404


def test_payment_after_the_deadline_succeeds_while_the_seats_are_free(
    live: Live, show: ShowSeed
) -> None:
    rid = hold(live.dsn, show, ["A1", "A2"], user_id=USER, now=live.now())
    live.advance(timedelta(minutes=11))

    answer = pay(live, rid, {"method": "card", "card_number": GOOD_CARD})

    assert answer["status"] == 201
    assert len(answer["tickets"]) == 2


def test_payment_after_the_deadline_is_refused_once_a_seat_is_taken(
    live: Live, show: ShowSeed
) -> None:
    rid = hold(live.dsn, show, ["A1", "A2"], user_id=USER, now=live.now())
    live.advance(timedelta(minutes=11))
    other = hold(live.dsn, show, ["A2"], user_id="user-bob", now=live.now())

    answer = pay(live, rid, {"method": "card", "card_number": GOOD_CARD})

    assert (answer["status"], answer["error"]) == (409, "hold_expired")
    assert query(live.dsn, "SELECT count(*) FROM payments") == [(0,)]
    assert live.provider.charges == {}
    assert query(
        live.dsn, "SELECT reservation_id FROM show_seats WHERE seat_id = %s", show.seats["A2"]
    ) == [(other,)]


def test_a_retried_payment_with_the_same_key_charges_once(live: Live, show: ShowSeed) -> None:
    rid = hold(live.dsn, show, ["A1"], user_id=USER, now=live.now())
    body = {"method": "card", "card_number": GOOD_CARD}

    first = pay(live, rid, body, **{"Idempotency-Key": "pay-1"})
    second = pay(live, rid, body, **{"Idempotency-Key": "pay-1"})
    reused = pay(live, rid, {"method": "online"}, **{"Idempotency-Key": "pay-1"})

    assert first["status"] == second["status"] == 201
    assert first == second
    assert len(live.provider.charges) == 1
    assert query(live.dsn, "SELECT count(*) FROM payments") == [(1,)]
    assert (reused["status"], reused["error"]) == (422, "idempotency_key_reused")


def test_a_retried_declined_payment_replays_the_decline(live: Live, show: ShowSeed) -> None:
    rid = hold(live.dsn, show, ["A1"], user_id=USER, now=live.now())
    body = {"method": "card", "card_number": CARD_DECLINED}

    first = pay(live, rid, body, **{"Idempotency-Key": "declined-1"})
    second = pay(live, rid, body, **{"Idempotency-Key": "declined-1"})

    assert first["status"] == second["status"] == 402
    assert first["payment"]["id"] == second["payment"]["id"]
    assert query(live.dsn, "SELECT count(*) FROM payments") == [(1,)]


def test_concurrent_payments_of_one_reservation_charge_once(live: Live, show: ShowSeed) -> None:
    rid = hold(live.dsn, show, ["A1", "A2"], user_id=USER, now=live.now())
    body = {"method": "card", "card_number": GOOD_CARD}
    headers = alice(live)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=str(live.client.base_url), timeout=10) as client:
            url = f"/reservations/{rid}/payments"
            return client.post(url, json=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(attempt, range(4)))

    assert statuses == [201, 409, 409, 409]
    assert len(live.provider.charges) == 1
    assert query(live.dsn, "SELECT status FROM payments") == [("completed",)]
