"""Every admin endpoint (found in `app.routes`) refuses anonymous callers, customers and staff."""

import re
import typing

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from common.auth import AdminClaims
from tests.global_api.support import GlobalClient

_ADMIN_DEPENDENCY = typing.get_args(AdminClaims)[1].dependency


def _needs_admin(dependant: Dependant) -> bool:
    return any(dep.call is _ADMIN_DEPENDENCY or _needs_admin(dep) for dep in dependant.dependencies)


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path with placeholder ids) of every route guarded by AdminClaims."""
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and _needs_admin(route.dependant):
            path = re.sub(r"\{code\}", "eu-west", route.path)
            path = re.sub(r"\{[^}]+\}", "user-00000000", path)
            found.extend((method, path) for method in sorted(route.methods or ()))
    return found


def test_admin_routes_are_discovered(app: FastAPI) -> None:
    routes = admin_routes(app)
    for expected in [
        ("GET", "/users"),
        ("PATCH", "/users/user-00000000"),
        ("PUT", "/users/user-00000000/cinemas"),
        ("PUT", "/directory/regions/eu-west"),
        ("POST", "/directory/cinemas"),
        ("POST", "/auth/keys/rotate"),
    ]:
        assert expected in routes


def test_admin_routes_refuse_other_roles(api: GlobalClient, app: FastAPI) -> None:
    customer = api.user("customer")
    staff = api.user("staff")
    for method, path in admin_routes(app):
        anonymous = api.http.request(method, path, json={})
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.json()["error"] == "unauthorized"
        for caller in (customer, staff):
            response = api.http.request(method, path, json={}, headers=caller["headers"])
            assert response.status_code == 403, (method, path, caller["role"])
            assert response.json()["error"] == "forbidden"


def test_admin_manages_users(api: GlobalClient) -> None:
    admin = api.admin_headers()
    ann = api.user()
    page = api.http.get("/users", params={"q": ann["email"][:12].upper()}, headers=admin).json()
    assert [item["id"] for item in page["items"]] == [ann["id"]]
    assert page["total"] == 1
    customers = api.http.get("/users", params={"role": "customer", "limit": 1}, headers=admin)
    assert customers.json()["limit"] == 1
    assert len(customers.json()["items"]) == 1
    too_many = api.http.get("/users", params={"limit": 201}, headers=admin)
    assert too_many.status_code == 422
    renamed = api.http.patch(f"/users/{ann['id']}", json={"display_name": "Anna"}, headers=admin)
    assert renamed.json()["display_name"] == "Anna"
    assert api.http.get(f"/users/{ann['id']}", headers=admin).json()["display_name"] == "Anna"
    assert api.http.get("/users/user-missing", headers=admin).status_code == 404


def test_staff_cinema_assignment_checks_the_directory(api: GlobalClient) -> None:
    admin = api.admin_headers()
    cinema = api.cinema()
    staff = api.user("staff")
    unknown = api.http.put(
        f"/users/{staff['id']}/cinemas",
        json={"cinema_ids": [cinema["id"], "cin-eu-west-000000000000"]},
        headers=admin,
    )
    assert unknown.status_code == 422
    assert unknown.json()["cinema_ids"] == ["cin-eu-west-000000000000"]
    ok = api.http.put(
        f"/users/{staff['id']}/cinemas", json={"cinema_ids": [cinema["id"]]}, headers=admin
    )
    assert ok.json()["cinemas"] == [cinema["id"]]


def test_demoting_staff_clears_their_cinemas(api: GlobalClient) -> None:
    admin = api.admin_headers()
    cinema = api.cinema()
    staff = api.user("staff")
    path = f"/users/{staff['id']}"
    api.http.put(f"{path}/cinemas", json={"cinema_ids": [cinema["id"]]}, headers=admin)
    renamed = api.http.patch(path, json={"display_name": "Still staff"}, headers=admin)
    assert renamed.json()["cinemas"] == [cinema["id"]]
    demoted = api.http.patch(path, json={"role": "customer"}, headers=admin)
    assert demoted.json()["cinemas"] == []
    promoted = api.http.patch(path, json={"role": "staff"}, headers=admin)
    assert promoted.json()["cinemas"] == []


def test_admin_cannot_demote_or_disable_self(api: GlobalClient) -> None:
    admin = api.admin_headers()
    me = api.http.get("/users/me", headers=admin).json()
    for change in ({"role": "customer"}, {"disabled": True}):
        response = api.http.patch(f"/users/{me['id']}", json=change, headers=admin)
        assert response.status_code == 409
        assert response.json()["error"] == "cannot_modify_self"


def test_customer_lookup_by_email_for_staff_and_admins(api: GlobalClient) -> None:
    customer = api.user()
    staff = api.user("staff")
    other_staff = api.user("staff")
    admin = api.admin_headers()
    found = api.http.get(
        "/users/lookup", params={"email": customer["email"].upper()}, headers=staff["headers"]
    )
    assert found.status_code == 200, found.text
    assert (found.json()["id"], found.json()["role"]) == (customer["id"], "customer")
    by_admin = api.http.get("/users/lookup", params={"email": staff["email"]}, headers=admin)
    assert by_admin.json()["id"] == staff["id"]
    # Staff cannot look up staff (or admins); unknown emails look the same.
    for email in (other_staff["email"], "nobody@example.com"):
        hidden = api.http.get("/users/lookup", params={"email": email}, headers=staff["headers"])
        assert hidden.status_code == 404
        assert hidden.json()["error"] == "user_not_found"
    refused = api.http.get(
        "/users/lookup", params={"email": staff["email"]}, headers=customer["headers"]
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert api.http.get("/users/lookup", params={"email": customer["email"]}).status_code == 401
    for params in ({}, {"email": "x"}, {"email": "a" * 400}):
        bad = api.http.get("/users/lookup", params=params, headers=admin)
        assert bad.status_code == 422, params
        assert bad.json()["error"] == "validation_error"
