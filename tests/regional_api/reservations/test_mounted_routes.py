"""The feature routers' endpoints are the app's own routes, documented and overridable as before."""

import asyncio
import json
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from common.routing import mount
from harness.tokens import TestIssuer
from regional_api.config import RegionalSettings
from regional_api.main import FEATURE_ROUTERS, create_app
from regional_api.reservations import router as reservations
from tests.regional_api.factories import ShowSeed
from tests.support.resolutions import counted_resolutions


def test_every_endpoint_is_a_route_of_the_app(issuer: TestIssuer) -> None:
    """No lazy router wrapper in front of an endpoint: its handler is built once, at startup."""
    app = create_app(RegionalSettings(), jwks=issuer.jwks)
    holds = [r for r in app.router.routes if getattr(r, "path", None) == "/shows/{show_id}/holds"]
    assert holds
    assert all(isinstance(route, APIRoute) for route in holds)
    assert all(getattr(route, "path", None) for route in app.router.routes)


def test_the_openapi_document_is_the_one_include_router_gives() -> None:
    """Mounting changes no path, parameter, model, tag, summary or operation id."""
    included, mounted = FastAPI(), FastAPI()
    for router in FEATURE_ROUTERS:
        included.include_router(router)
        mount(mounted, router)
    # Key for key, in the same order: the hold routes, matched first, are documented in place.
    assert json.dumps(mounted.openapi()) == json.dumps(included.openapi())


def test_the_hold_payment_and_join_routes_are_matched_first(issuer: TestIssuer) -> None:
    """The router tries them before every other route; the document lists paths as declared."""
    app = create_app(RegionalSettings(), jwks=issuer.jwks)
    first = {getattr(route, "path", None) for route in app.router.routes[:4]}
    assert first == {
        "/shows/{show_id}/holds",
        "/shows/{show_id}/best-available",
        "/reservations/{reservation_id}/payments",
        "/shows/{show_id}/line",
    }
    included = FastAPI()
    for router in FEATURE_ROUTERS:
        included.include_router(router)
    paths = [path for path in app.openapi()["paths"] if path not in ("/healthz", "/readyz")]
    assert paths == list(included.openapi()["paths"])


def test_a_dependency_override_reaches_a_mounted_endpoint() -> None:
    """`app.dependency_overrides` applies to mounted endpoints, as to included ones."""

    async def greeting() -> str:
        return "hello"

    router = APIRouter()

    @router.get("/greet")
    async def greet(word: Annotated[str, Depends(greeting)]) -> dict[str, str]:
        return {"word": word}

    app = FastAPI()
    mount(app, router)

    async def ask() -> dict[str, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer: dict[str, str] = (await client.get("/greet")).json()
            return answer

    assert asyncio.run(ask()) == {"word": "hello"}

    async def other() -> str:
        return "overridden"

    app.dependency_overrides[greeting] = other
    assert asyncio.run(ask()) == {"word": "overridden"}


def test_the_hold_context_parses_no_declared_parameter() -> None:
    """Its show id and headers are read from the request: FastAPI parses none per request."""
    holds = [
        route
        for route in reservations.router.routes
        if isinstance(route, APIRoute)
        and route.path.startswith("/shows/{show_id}/")
        and "POST" in (route.methods or ())
        and route.status_code == 201
    ]
    assert len(holds) == 2
    for route in holds:
        (context,) = route.dependant.dependencies
        assert (context.path_params, context.header_params) == ([], []), route.path
        assert route.dependant.path_params == []  # documented through openapi_extra instead


def test_a_hold_with_a_valid_body_resolves_no_dependency(
    client: httpx.Client, show: ShowSeed, issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both kinds of hold go to the lean handler (common.routing.lean), keyed or not."""
    resolved = counted_resolutions(monkeypatch)
    user = issuer.headers(sub="usr-lean-hold")
    seats = sorted(show.seats.values())
    holds = f"/shows/{show.show_id}/holds"
    assert client.post(holds, json={"seat_ids": seats[:1]}, headers=user).status_code == 201
    keyed = user | {"Idempotency-Key": "lean-hold-1"}
    assert client.post(holds, json={"seat_ids": seats[1:2]}, headers=keyed).status_code == 201
    best = f"/shows/{show.show_id}/best-available"
    assert client.post(best, json={"count": 2}, headers=user).status_code == 201
    assert resolved == []
    # An invalid body is FastAPI's to refuse, with its own resolution and error body.
    assert client.post(holds, json={"seat_ids": []}, headers=user).status_code == 422
    assert resolved == [holds]
