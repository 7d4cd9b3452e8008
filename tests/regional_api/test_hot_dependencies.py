"""The hot writes resolve one dependency each and still document every header they read."""

import pytest
from fastapi.routing import APIRoute
from pydantic import ValidationError

from harness.tokens import TestIssuer
from regional_api.config import RegionalSettings
from regional_api.main import create_app
from regional_api.payments import router as payments
from regional_api.reservations import router as reservations
from schemas.reservations import HoldCreate

# Each hot write, its path parameter and the headers it reads.
HOT_WRITES = {
    "/shows/{show_id}/holds": ("show_id", {"X-Admission-Pass", "Idempotency-Key"}),
    "/shows/{show_id}/best-available": ("show_id", {"X-Admission-Pass", "Idempotency-Key"}),
    "/reservations/{reservation_id}/payments": ("reservation_id", {"Idempotency-Key"}),
}


@pytest.fixture(scope="module")
def routes() -> dict[str, APIRoute]:
    return {
        route.path: route
        for router in (reservations.router, payments.router)
        for route in router.routes
        if isinstance(route, APIRoute)
        and route.path in HOT_WRITES
        and "POST" in (route.methods or ())
    }


@pytest.mark.parametrize("path", HOT_WRITES)
def test_a_hot_write_resolves_one_dependency(routes: dict[str, APIRoute], path: str) -> None:
    """One dependency, with no dependency of its own: its checks are plain calls."""
    dependant = routes[path].dependant
    assert len(dependant.dependencies) == 1, [d.call for d in dependant.dependencies]
    (context,) = dependant.dependencies
    assert context.dependencies == [], [d.call for d in context.dependencies]


def test_openapi_still_documents_the_hot_writes_parameters(issuer: TestIssuer) -> None:
    """The path id and every header the context reads are in the published schema."""
    document = create_app(RegionalSettings(), jwks=issuer.jwks).openapi()
    for path, (path_param, headers) in HOT_WRITES.items():
        parameters = document["paths"][path]["post"]["parameters"]
        assert {(p["name"], p["in"]) for p in parameters} == {(path_param, "path")} | {
            (header, "header") for header in headers
        }


@pytest.mark.parametrize(
    ("seat_ids", "message"),
    [
        ([0], "seat ids are positive integers"),
        ([3, 2**63], "seat ids are positive integers"),
        ([4, 4], "seat ids must be unique"),
    ],
)
def test_a_bad_seat_id_keeps_its_422_wording(seat_ids: list[int], message: str) -> None:
    """The cheaper seat-id check names the list and says what is wrong, as before."""
    with pytest.raises(ValidationError) as refused:
        HoldCreate(seat_ids=seat_ids)
    (error,) = refused.value.errors()
    assert (error["loc"], error["msg"]) == (("seat_ids",), f"Value error, {message}")
