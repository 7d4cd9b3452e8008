"""Idempotent writes opt in through one dependency, document their answer and replay it."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

from harness.tokens import TestIssuer
from regional_api.idempotency.service import request_hash
from schemas.reservations import HoldCreate
from tests.regional_api.factories import GOOD_CARD, ShowSeed, hold, query
from tests.regional_api.reservations.conftest import make_app
from tests.regional_api.served import Live, live, show

__all__ = ["live", "show"]

USER = "user-keyed"

# Each idempotent write and the model of its stored 201 answer.
IDEMPOTENT = {
    "/shows/{show_id}/holds": "ReservationRead",
    "/shows/{show_id}/best-available": "ReservationRead",
    "/reservations/{reservation_id}/payments": "PaymentOutcome",
    "/shows/{show_id}/sales": "SaleRead",
}


def test_every_idempotent_write_documents_its_key_and_answer(
    regional_dsn: str, issuer: TestIssuer
) -> None:
    """The `Idempotency-Key` header comes only from `IdempotencyDep`, on these writes only."""
    document = make_app(regional_dsn, issuer).openapi()
    keyed = {
        path
        for path, operations in document["paths"].items()
        for operation in operations.values()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert keyed == set(IDEMPOTENT)
    for path, model in IDEMPOTENT.items():
        created = document["paths"][path]["post"]["responses"]["201"]
        schema = created["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith(f"/{model}"), (path, schema)


def _post(live: Live, path: str, body: dict[str, Any], key: str, sub: str = USER) -> httpx.Response:
    headers = live.issuer.headers(sub=sub) | {"Idempotency-Key": key}
    with httpx.Client(base_url=str(live.client.base_url), timeout=30) as client:
        return client.post(path, json=body, headers=headers)


def _key_rows(dsn: str) -> list[tuple[Any, ...]]:
    return query(dsn, "SELECT key, status_code, response FROM idempotency_keys ORDER BY key")


def test_a_replayed_hold_is_the_same_bytes_read_from_its_reservation(
    live: Live, show: ShowSeed
) -> None:
    path, body = f"/shows/{show.show_id}/holds", {"seat_ids": show.ids("A1", "A2")}
    first = _post(live, path, body, "hold-1")
    again = _post(live, path, body, "hold-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    # The key keeps the answer's status and the reservation's id, not a rendered body.
    assert _key_rows(live.dsn) == [("hold-1", 201, {"reservation_id": first.json()["id"]})]


def test_a_replayed_best_available_hold_claims_nothing_more(live: Live, show: ShowSeed) -> None:
    path = f"/shows/{show.show_id}/best-available"
    first = _post(live, path, {"count": 2}, "best-1")
    again = _post(live, path, {"count": 2}, "best-1")
    other = _post(live, path, {"count": 3}, "best-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    assert query(live.dsn, "SELECT count(*) FROM reservations") == [(1,)]


def test_concurrent_best_available_holds_with_one_key_hold_once(live: Live, show: ShowSeed) -> None:
    # The losers see the same best block: they wait on its seats, or claim another block and
    # meet the winner's key row; either way they replay the winner's hold.
    path = f"/shows/{show.show_id}/best-available"
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: _post(live, path, {"count": 2}, "race"), range(6)))

    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 5
    assert query(live.dsn, "SELECT count(*) FROM reservations") == [(1,)]


def test_concurrent_payments_with_one_key_charge_once(live: Live, show: ShowSeed) -> None:
    rid = hold(live.dsn, show, ["A1", "A2"], user_id=USER, now=live.now())
    path, body = f"/reservations/{rid}/payments", {"method": "card", "card_number": GOOD_CARD}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _post(live, path, body, "pay-race"), range(4)))

    # A loser replays the payment as it stands: pending (202) or paid (201), never refused.
    assert {a.status_code for a in answers} <= {201, 202}, [a.text for a in answers]
    assert len({a.json()["payment"]["id"] for a in answers}) == 1
    assert len(live.provider.charges) == 1
    assert query(live.dsn, "SELECT status FROM payments") == [("completed",)]
    paid = _post(live, path, body, "pay-race")
    assert paid.status_code == 201
    assert len(paid.json()["tickets"]) == 2
    (payment_key,) = _key_rows(live.dsn)
    assert payment_key == ("pay-race", 201, {"payment_id": paid.json()["payment"]["id"]})


def test_an_answer_stored_whole_by_an_earlier_release_is_replayed_as_stored(
    live: Live, show: ShowSeed
) -> None:
    path = f"/shows/{show.show_id}/holds"
    request = HoldCreate(seat_ids=show.ids("B1"))
    stored = {"id": "res-eu-west-earlier00001", "status": "held"}
    with psycopg.connect(live.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response)"
            " VALUES (%s, 'earlier', %s, 201, %s)",
            (USER, request_hash("POST", path, request.model_dump(mode="json")), Jsonb(stored)),
        )

    again = _post(live, path, request.model_dump(mode="json"), "earlier")

    assert (again.status_code, again.json()) == (201, stored)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert query(live.dsn, "SELECT count(*) FROM reservations") == [(0,)]
