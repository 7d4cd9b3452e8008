"""Bad input always gets a 4xx with the error body, never a 500."""

from typing import Any

import pytest

from tests.global_api.support import PASSWORD, GlobalClient, unique_email

GOOD = {"email": "x@example.com", "password": PASSWORD, "display_name": "X"}

BAD_REGISTRATIONS: list[tuple[str, dict[str, Any]]] = [
    ("bad email", GOOD | {"email": "not-an-email"}),
    ("short password", GOOD | {"password": "short"}),
    ("unknown field", GOOD | {"role": "admin"}),
    ("wrong type", GOOD | {"display_name": 42}),
    ("missing field", {"email": "x@example.com"}),
    ("empty name", GOOD | {"display_name": "   "}),
    ("huge password", GOOD | {"password": "x" * 1000}),
]


@pytest.mark.parametrize(("name", "body"), BAD_REGISTRATIONS, ids=[n for n, _ in BAD_REGISTRATIONS])
def test_bad_registrations_are_422(api: GlobalClient, name: str, body: dict[str, Any]) -> None:
    response = api.http.post("/auth/register", json=body)
    assert response.status_code == 422, name
    assert response.json()["error"] == "validation_error"
    assert response.json()["detail"]


def test_malformed_bodies_are_4xx(api: GlobalClient) -> None:
    for content in (b"{not json", b"[]", b"null", b"\xff\xfe"):
        response = api.http.post(
            "/auth/login", content=content, headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, content
        assert "error" in response.json()
    nul = api.http.post("/auth/login", json={"email": "a\x00b@example.com", "password": "x"})
    assert 400 <= nul.status_code < 500


def test_directory_validation(api: GlobalClient) -> None:
    admin = api.admin_headers()
    api.region("eu-west")
    base = {"name": "Rex", "city": "Paris", "timezone": "Europe/Paris", "region": "eu-west"}
    cases: list[tuple[dict[str, Any], str]] = [
        (base | {"timezone": "Mars/Olympus"}, "invalid_timezone"),
        (base | {"timezone": "America"}, "invalid_timezone"),
        (base | {"timezone": "../../etc/passwd"}, "invalid_timezone"),
        (base | {"region": "EU West"}, "validation_error"),
        (base | {"region": "ap-south"}, "unknown_region"),
        (base | {"extra": 1}, "validation_error"),
    ]
    for body, code in cases:
        response = api.http.post("/directory/cinemas", json=body, headers=admin)
        assert response.status_code == 422, body
        assert response.json()["error"] == code, body
    region = {"code": "Bad_Code", "name": "x", "currency": "EUR", "endpoints": ["http://a"]}
    bad_path = api.http.put("/directory/regions/Bad_Code", json=region, headers=admin)
    assert bad_path.status_code == 422
    mismatch = api.http.put(
        "/directory/regions/us-east", json=region | {"code": "eu-west"}, headers=admin
    )
    assert mismatch.json()["error"] == "code_mismatch"
    bad_currency = api.http.put(
        "/directory/regions/eu-west",
        json=region | {"code": "eu-west", "currency": "euro"},
        headers=admin,
    )
    assert bad_currency.status_code == 422
    cinema = api.cinema()
    patch = api.http.patch(
        f"/directory/cinemas/{cinema['id']}", json={"timezone": "Nowhere/Land"}, headers=admin
    )
    assert patch.json()["error"] == "invalid_timezone"


def test_admin_inputs_are_validated(api: GlobalClient) -> None:
    admin = api.admin_headers()
    user = api.register(unique_email())
    for body in ({"role": "emperor"}, {"disabled": "maybe"}, {"nickname": "x"}):
        response = api.http.patch(f"/users/{user['id']}", json=body, headers=admin)
        assert response.status_code == 422, body
    assert api.http.get("/users", params={"role": "emperor"}, headers=admin).status_code == 422
    assert api.http.get("/users", params={"offset": -1}, headers=admin).status_code == 422
    odd = api.http.get("/users", params={"q": "%_\\"}, headers=admin)
    assert odd.status_code == 200
    assert odd.json()["items"] == []
