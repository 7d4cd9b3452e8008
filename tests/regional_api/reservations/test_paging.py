"""A customer's history is paged by key: every reservation once, newest first, bad keys 422."""

from base64 import urlsafe_b64encode
from datetime import datetime

import httpx

from harness import tokens
from schemas.pagination import encode_cursor
from tests.regional_api.factories import ShowSeed
from tests.regional_api.reservations.test_api import hold


def test_pages_by_key_cover_the_history_once(
    client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    me = issuer.headers(sub="paula")
    ids = [hold(client, show, me, label).json()["id"] for label in ("C1", "C2", "C3", "C4", "C5")]
    seen: list[str] = []
    pages, before = 0, None
    while True:
        params = {"limit": 2} | ({"before": before} if before else {})
        page = client.get("/me/reservations", params=params, headers=me).json()
        assert "total" not in page  # no count of the whole history
        seen += [item["id"] for item in page["items"]]
        pages, before = pages + 1, page["next_before"]
        if before is None:
            break
    assert seen == ids[::-1]
    assert pages == 3
    # Offset still works within a page of keys (the router's fan-out asks for offset 0).
    shifted = client.get("/me/reservations?limit=2&offset=1", headers=me).json()
    assert [item["id"] for item in shifted["items"]] == ids[::-1][1:3]


def test_a_key_from_another_listing_is_only_a_position(
    client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    me = issuer.headers(sub="quinn")
    first = hold(client, show, me, "D1").json()
    later = hold(client, show, me, "D2").json()
    key = encode_cursor(datetime.fromisoformat(later["created_at"]), later["id"])
    page = client.get("/me/reservations", params={"before": key}, headers=me).json()
    assert [item["id"] for item in page["items"]] == [first["id"]]


def test_bad_keys_are_422(client: httpx.Client, issuer: tokens.TestIssuer) -> None:
    me = issuer.headers(sub="rita")
    nul = urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|res\x00").decode()
    naive = urlsafe_b64encode(b"2026-01-01T00:00:00|res-1").decode()
    for bad in ("x", "not-base64!", encode_cursor.__name__, "MjAyNi0wMS0wMQ", "fA", nul, naive):
        response = client.get("/me/reservations", params={"before": bad}, headers=me)
        assert response.status_code == 422, bad
        assert response.json()["error"] == "invalid_cursor"
    too_long = client.get("/me/reservations", params={"before": "a" * 201}, headers=me)
    assert too_long.status_code == 422
    assert client.get("/me/reservations?offset=201", headers=me).status_code == 422
