"""Tokens are verified offline: catalog writes and reads never call global_api.

The app is built with `jwks=` (the trusted keys pinned), and its `global_api_url` points at a
stand-in that counts every request it gets. The full proof with the real global_api process
stopped mid-run lives in the end-to-end tests (`tests/e2e/`).
"""

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from common.ids import new_id
from harness import tokens
from harness.live import live_server
from schemas.auth import Role
from tests.regional_api.catalog.conftest import make_app


@pytest.fixture
def counting_global_api() -> Iterator[tuple[str, list[str]]]:
    """A stand-in for global_api that answers 503 to everything and records each path."""
    calls: list[str] = []
    fake = FastAPI()

    @fake.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def anything(path: str, request: Request) -> JSONResponse:
        calls.append(f"{request.method} /{path}")
        return JSONResponse({"error": "unavailable", "detail": "down"}, status_code=503)

    with live_server(fake) as url:
        yield url, calls


def test_catalog_works_without_calling_global_api(
    regional_dsn: str,
    issuer: tokens.TestIssuer,
    counting_global_api: tuple[str, list[str]],
) -> None:
    url, calls = counting_global_api
    admin = issuer.headers(role=Role.admin)
    cinema_id = new_id("cin", "eu-west")
    staff = issuer.headers(role=Role.staff, cinemas=(cinema_id,))
    app = make_app(regional_dsn, issuer, global_api_url=url)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=10) as api:
        cinema = {"name": "Offline", "city": "Paris", "timezone": "Europe/Paris"}
        assert api.put(f"/cinemas/{cinema_id}", json=cinema, headers=admin).status_code == 200
        hall = {"name": "H", "rows": ["AAA"]}
        hall_id = api.post(f"/cinemas/{cinema_id}/halls", json=hall, headers=staff).json()["id"]
        movie = {"title": "M", "duration_minutes": 90}
        movie_id = api.post("/movies", json=movie, headers=admin).json()["id"]
        show = {
            "movie_id": movie_id,
            "starts_at": "2031-01-01T20:00:00+01:00",
            "prices": {"standard": 1000},
        }
        created = api.post(f"/halls/{hall_id}/shows", json=show, headers=staff)
        assert created.status_code == 201, created.text

        # A token signed by an unknown key is refused without trying to fetch new keys.
        stranger = tokens.TestIssuer(kid="other-key").headers(role=Role.admin)
        refused = api.post("/movies", json=movie, headers=stranger)
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_token")
        expired = issuer.headers(role=Role.admin, ttl=-60)
        assert api.post("/movies", json=movie, headers=expired).json()["error"] == "token_expired"

        metrics = api.get("/metrics").text
        for counter in (
            "halls_created",
            "movies_created",
            "shows_created",
            "show_overlaps_refused",
        ):
            assert f"catalog_{counter}_total" in metrics
    assert calls == []
