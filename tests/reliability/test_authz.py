"""Authorization matrix generated from the routes: every endpoint, six kinds of caller."""

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from deploy.local.stack import LocalStack
from global_api.config import GlobalSettings
from global_api.main import create_app as create_global
from harness.live import live_server
from harness.tokens import TestIssuer
from regional_api.config import RegionalSettings
from regional_api.main import create_app as create_regional
from router.main import create_app as create_router
from router.proxy.resolve import Route, RouteNotFound, resolve
from schemas.auth import Role
from tests.global_api.support import ADMIN_EMAIL, ADMIN_PASSWORD, GlobalClient
from tests.regional_api.factories import grid_rows, make_cinema, seed_show
from tests.reliability.kit import CARD_OK
from tests.reliability.policy import (
    CALLERS,
    GLOBAL_POLICY,
    OPS,
    REGIONAL_POLICY,
    ROUTER_POLICY,
    Endpoint,
    endpoints,
    unpoliced,
    verdict,
)

PROBE_BODY = {"__probe__": 1}  # refused by every request model, after the access checks
# Refusals first, so the allowed callers' writes (release, rotate) cannot hide a refusal.
ORDER = ("anonymous", "other_customer", "staff_other", "customer", "staff", "admin")


def _regional_app(dsn: str, issuer: TestIssuer) -> FastAPI:
    settings = RegionalSettings(region="eu-west", database_url=dsn, log_level="WARNING")
    return create_regional(settings, jwks=issuer.jwks)


def _global_app(dsn: str) -> FastAPI:
    settings = GlobalSettings(
        database_url=dsn, argon2_time_cost=1, argon2_memory_cost=8, argon2_parallelism=1,
        bootstrap_admin_email=ADMIN_EMAIL, bootstrap_admin_password=ADMIN_PASSWORD,
        log_level="WARNING",
    )  # fmt: skip
    return create_global(settings)


def _fill(path: str, values: dict[str, str]) -> str:
    if path.endswith("/qr.svg") and "paid_reservation_id" in values:
        values = values | {"reservation_id": values["paid_reservation_id"]}  # its ticket's code
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _matrix(
    client: httpx.Client,
    found: list[Endpoint],
    policy: dict[tuple[str, str], str],
    headers: dict[str, dict[str, str]],
    values: dict[str, str],
) -> list[str]:
    wrong = []
    for caller in ORDER:
        for endpoint in found:
            rule = policy[(endpoint.method, endpoint.path)]
            body = PROBE_BODY if endpoint.method in ("POST", "PUT", "PATCH") else None
            url = _fill(endpoint.path, values)
            response = client.request(endpoint.method, url, json=body, headers=headers[caller])
            problem = verdict(rule, caller, response.status_code)
            if problem:
                wrong.append(f"{endpoint.method} {endpoint.path} [{rule}] as {caller}: {problem}")
    return wrong


@pytest.fixture
def regional(regional_dsn: str, issuer: TestIssuer) -> Iterator[tuple[FastAPI, str]]:
    """A live regional app on a fresh database."""
    app = _regional_app(regional_dsn, issuer)
    with live_server(app) as url:
        yield app, url


def test_every_regional_endpoint_has_a_policy(issuer: TestIssuer) -> None:
    """A new regional endpoint without a policy entry fails here."""
    app = create_regional(RegionalSettings(), jwks=issuer.jwks)
    assert unpoliced(endpoints(app), REGIONAL_POLICY) == []


def test_every_global_endpoint_has_a_policy() -> None:
    """A new global endpoint without a policy entry fails here."""
    assert unpoliced(endpoints(create_global(GlobalSettings())), GLOBAL_POLICY) == []


def test_router_routes_and_policy_cover_every_endpoint(issuer: TestIssuer) -> None:
    """The router's own endpoints have a policy; every service endpoint has a public route."""
    router_app = create_router(jwks=issuer.jwks)
    assert unpoliced(endpoints(router_app.api), ROUTER_POLICY) == []
    regions, cinemas = {"eu-west"}, {"cin-eu-west-aaaaaaaaaaaa": "eu-west"}
    values = {
        "cinema_id": "cin-eu-west-aaaaaaaaaaaa", "hall_id": "hall-eu-west-aaaaaaaaaaaa",
        "movie_id": "mov-eu-west-aaaaaaaaaaaa", "show_id": "show-eu-west-aaaaaaaaaaaa",
        "reservation_id": "res-eu-west-aaaaaaaaaaaa", "payment_id": "pay-eu-west-aaaaaaaaaaaa",
        "user_id": "u1", "code": "eu-west",
    }  # fmt: skip
    unroutable = []
    for found, upstream in (
        (endpoints(create_regional(RegionalSettings(), jwks=issuer.jwks)), "eu-west"),
        (endpoints(create_global(GlobalSettings())), None),
    ):
        for endpoint in found:
            if (endpoint.method, endpoint.path) in ROUTER_POLICY | OPS:
                continue  # per-process ops and docs, and the router's own fan-out
            path = _fill(endpoint.path, values)
            try:
                route: Route | None = resolve(path, path, regions=regions, cinema_regions=cinemas)
            except RouteNotFound:
                scoped = f"/regions/eu-west{path}"
                route = resolve(scoped, scoped, regions=regions, cinema_regions=cinemas)
            if route is not None and route.region is not None:
                assert route.path == path
            if route is None or route.region != upstream:
                unroutable.append(f"{endpoint.method} {endpoint.path}")
    assert unroutable == []


def _regional_world(
    dsn: str, url: str, issuer: TestIssuer
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    seed = seed_show(dsn, rows=grid_rows())
    other_cinema = make_cinema(dsn)
    headers = {
        "anonymous": {},
        "customer": issuer.headers(sub="usr-owner"),
        "other_customer": issuer.headers(sub="usr-stranger"),
        "staff_other": issuer.headers(sub="usr-staff2", role=Role.staff, cinemas=(other_cinema,)),
        "staff": issuer.headers(sub="usr-staff", role=Role.staff, cinemas=(seed.cinema_id,)),
        "admin": issuer.headers(sub="usr-admin", role=Role.admin),
    }
    owner = headers["customer"]
    with httpx.Client(base_url=url, timeout=30.0, headers=owner) as client:
        seats = list(seed.seats.values())
        paid = client.post(f"/shows/{seed.show_id}/holds", json={"seat_ids": seats[:1]}).json()
        payment = client.post(
            f"/reservations/{paid['id']}/payments", json={"method": "card", "card_number": CARD_OK}
        ).json()
        held = client.post(f"/shows/{seed.show_id}/holds", json={"seat_ids": seats[1:2]}).json()
    values = {
        "cinema_id": seed.cinema_id, "hall_id": seed.hall_id, "movie_id": seed.movie_id,
        "show_id": seed.show_id, "reservation_id": held["id"],
        "payment_id": payment["payment"]["id"], "user_id": "usr-owner",
        "paid_reservation_id": paid["id"], "code": payment["tickets"][0]["code"],
    }  # fmt: skip
    return headers, values


def test_regional_authorization_matrix(
    regional: tuple[FastAPI, str], regional_dsn: str, issuer: TestIssuer
) -> None:
    """Every regional endpoint answers each caller as its policy says; 404 for others' objects."""
    app, url = regional
    headers, values = _regional_world(regional_dsn, url, issuer)
    found = endpoints(app)
    with httpx.Client(base_url=url, timeout=30.0) as client:
        wrong = _matrix(client, found, REGIONAL_POLICY, headers, values)
    assert wrong == [], "\n".join(wrong)


def test_global_authorization_matrix(global_dsn: str) -> None:
    """Every global endpoint answers each caller as its policy says."""
    app = _global_app(global_dsn)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30.0) as http:
        api = GlobalClient(http)
        cinema = api.cinema()
        other = api.cinema()
        people = {
            "customer": api.user(),
            "other_customer": api.user(),
            "staff_other": api.user("staff", [other["id"]]),
            "staff": api.user("staff", [cinema["id"]]),
        }
        headers = {"anonymous": {}, "admin": api.admin_headers()}
        headers |= {caller: person["headers"] for caller, person in people.items()}
        values = {
            "cinema_id": cinema["id"], "code": "eu-west", "user_id": people["customer"]["id"],
        }  # fmt: skip
        wrong = _matrix(http, endpoints(app), GLOBAL_POLICY, headers, values)
    assert wrong == [], "\n".join(wrong)


def test_router_own_endpoints_matrix(stack: LocalStack) -> None:
    """The router's own endpoints: anonymous refused where a user is required."""
    for (method, path), rule in ROUTER_POLICY.items():
        if path == "/docs/oauth2-redirect":
            continue  # FastAPI adds it, but only /router/... reaches the router's own app
        response = httpx.request(method, stack.router_url + path, timeout=10.0)
        assert verdict(rule, "anonymous", response.status_code) is None, (path, response.text)
    assert set(CALLERS) >= set(ORDER)


@pytest.mark.parametrize("service", ["regional", "global", "router"])
def test_openapi_documents_the_bearer_token_of_every_non_public_operation(
    service: str, issuer: TestIssuer
) -> None:
    """Each operation's OpenAPI `security` follows its policy: none or optional when public."""
    app, policy = {
        "regional": lambda: (
            create_regional(RegionalSettings(), jwks=issuer.jwks),
            REGIONAL_POLICY,
        ),
        "global": lambda: (create_global(GlobalSettings()), GLOBAL_POLICY),
        "router": lambda: (create_router(jwks=issuer.jwks).api, ROUTER_POLICY),
    }[service]()
    document = app.openapi()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    wrong = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = policy[(method.upper(), path)] == "public"
            allowed: list[object] = [None, [{}, {"bearer": []}]] if public else [[{"bearer": []}]]
            if operation.get("security") not in allowed:
                wrong.append(f"{method.upper()} {path}: {operation.get('security')}")
    assert wrong == []
