"""The cinema mirror: admin upsert, on-demand fetch from the directory, and its failure modes."""

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from common.ids import new_id
from harness import tokens
from harness.live import live_server
from schemas.auth import Role
from tests.regional_api.catalog.conftest import Auth, make_app

CINEMA = {"name": "Lumière", "city": "Lyon", "address": "1 rue", "timezone": "Europe/Paris"}


def test_admin_upserts_the_mirror_and_lists_it(api: httpx.Client, auth: Auth) -> None:
    cinema_id = new_id("cin", "eu-west")
    created = api.put(f"/cinemas/{cinema_id}", json=CINEMA, headers=auth.admin)
    assert created.status_code == 200, created.text
    assert created.json() | {"synced_at": None} == {
        "id": cinema_id,
        "region": "eu-west",
        "synced_at": None,
        **CINEMA,
    }
    renamed = api.put(
        f"/cinemas/{cinema_id}", json=CINEMA | {"name": "Lumière 2"}, headers=auth.admin
    )
    assert renamed.json()["name"] == "Lumière 2"
    api.put(
        f"/cinemas/{new_id('cin', 'eu-west')}", json=CINEMA | {"city": "Nice"}, headers=auth.admin
    )

    everything = api.get("/cinemas").json()
    assert everything["total"] == 2
    in_lyon = api.get("/cinemas", params={"city": "LYON"}).json()
    assert [c["id"] for c in in_lyon["items"]] == [cinema_id]
    assert api.get(f"/cinemas/{cinema_id}").json()["name"] == "Lumière 2"


def test_mirror_writes_need_an_admin_and_valid_input(api: httpx.Client, auth: Auth) -> None:
    cinema_id = new_id("cin", "eu-west")
    path = f"/cinemas/{cinema_id}"
    assert api.put(path, json=CINEMA).status_code == 401
    assert api.put(path, json=CINEMA, headers=auth.customer).status_code == 403
    assert api.put(path, json=CINEMA, headers=auth.staff(cinema_id)).status_code == 403
    bad_zone = api.put(path, json=CINEMA | {"timezone": "Mars/Olympus"}, headers=auth.admin)
    assert (bad_zone.status_code, bad_zone.json()["error"]) == (422, "invalid_timezone")
    extra = api.put(path, json=CINEMA | {"seats": 3}, headers=auth.admin)
    assert (extra.status_code, extra.json()["error"]) == (422, "validation_error")


def test_ids_of_other_regions_or_malformed_ids_are_refused(api: httpx.Client, auth: Auth) -> None:
    foreign = new_id("cin", "us-east")
    for response in (
        api.get(f"/cinemas/{foreign}"),
        api.put(f"/cinemas/{foreign}", json=CINEMA, headers=auth.admin),
        api.get(f"/cinemas/{foreign}/halls"),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "wrong_region"
        assert response.json()["region"] == "us-east"
    malformed = api.get("/cinemas/not-an-id")
    assert (malformed.status_code, malformed.json()["error"]) == (404, "not_found")
    hall_id_as_cinema = api.get(f"/cinemas/{new_id('hall', 'eu-west')}")
    assert hall_id_as_cinema.status_code == 404


def test_unknown_cinema_with_the_directory_down_is_503(api: httpx.Client) -> None:
    response = api.get(f"/cinemas/{new_id('cin', 'eu-west')}")
    assert response.status_code == 503
    assert response.json()["error"] == "directory_unavailable"
    assert "Retry-After" in response.headers


@pytest.fixture
def directory() -> Iterator[tuple[str, dict[str, dict[str, str]], list[str]]]:
    """A stand-in for global_api's `GET /directory/cinemas/{id}`, counting its calls."""
    cinemas: dict[str, dict[str, str]] = {}
    calls: list[str] = []
    fake = FastAPI()

    @fake.get("/directory/cinemas/{cinema_id}")
    async def read(cinema_id: str) -> JSONResponse:
        calls.append(cinema_id)
        if cinema_id not in cinemas:
            return JSONResponse({"error": "not_found", "detail": "no"}, status_code=404)
        return JSONResponse(cinemas[cinema_id])

    with live_server(fake) as url:
        yield url, cinemas, calls


def test_unknown_cinema_is_fetched_once_then_served_while_the_directory_is_down(
    regional_dsn: str,
    issuer: tokens.TestIssuer,
    directory: tuple[str, dict[str, dict[str, str]], list[str]],
) -> None:
    url, cinemas, calls = directory
    cinema_id, missing = new_id("cin", "eu-west"), new_id("cin", "eu-west")
    cinemas[cinema_id] = {"id": cinema_id, "region": "eu-west", **CINEMA}
    with (
        live_server(make_app(regional_dsn, issuer, url)) as base,
        httpx.Client(base_url=base) as api,
    ):
        first = api.get(f"/cinemas/{cinema_id}/halls")
        assert (first.status_code, first.json()) == (200, [])
        assert api.get(f"/cinemas/{cinema_id}").json()["city"] == "Lyon"
        assert calls == [cinema_id]  # mirrored after the first lookup
        unknown = api.get(f"/cinemas/{missing}")
        assert (unknown.status_code, unknown.json()["error"]) == (404, "cinema_not_found")
        # A renamed cinema reaches the mirror when an admin asks for a sync.
        cinemas[cinema_id] |= {"name": "Lumière Terreaux"}
        assert api.get(f"/cinemas/{cinema_id}").json()["name"] == "Lumière"
        sync = f"/cinemas/{cinema_id}/sync"
        assert api.post(sync, headers=issuer.headers(role=Role.staff)).status_code == 403
        synced = api.post(sync, headers=issuer.headers(role=Role.admin))
        assert (synced.status_code, synced.json()["name"]) == (200, "Lumière Terreaux")
    # The same database, now with the directory unreachable: the mirror keeps serving.
    with live_server(make_app(regional_dsn, issuer)) as base, httpx.Client(base_url=base) as api:
        assert api.get(f"/cinemas/{cinema_id}").json()["name"] == "Lumière Terreaux"
        assert api.get(f"/cinemas/{missing}").status_code == 503
        down = api.post(f"/cinemas/{cinema_id}/sync", headers=issuer.headers(role=Role.admin))
        assert (down.status_code, down.json()["error"]) == (503, "directory_unavailable")
