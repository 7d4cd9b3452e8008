"""Customer service: admins see a customer's reservations in every cinema, staff in theirs only."""

import httpx

from harness import tokens
from schemas.auth import Role
from tests.regional_api.factories import ShowSeed
from tests.regional_api.reservations.test_api import hold, pay


def test_admins_see_all_staff_their_cinemas_and_others_are_refused(
    client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer
) -> None:
    customer = issuer.headers(sub="cora")
    first = hold(client, show, customer, "H1").json()["id"]
    assert pay(client, first, customer).status_code == 201
    second = hold(client, show, customer, "H2").json()["id"]
    hold(client, show, issuer.headers(sub="someone-else"), "H3")
    path = "/customers/cora/reservations"

    admin = client.get(path, headers=issuer.headers(role=Role.admin))
    assert admin.status_code == 200, admin.text
    assert [item["id"] for item in admin.json()["items"]] == [second, first]
    assert admin.json()["items"][1]["status"] == "confirmed"

    mine = issuer.headers(sub="sam", role=Role.staff, cinemas=(show.cinema_id,))
    assert [item["id"] for item in client.get(path, headers=mine).json()["items"]] == [
        second,
        first,
    ]
    elsewhere = issuer.headers(sub="sid", role=Role.staff, cinemas=("cin-eu-west-other",))
    other_cinema = client.get(path, headers=elsewhere)
    assert other_cinema.status_code == 200
    assert other_cinema.json()["items"] == []
    assert other_cinema.json()["next_before"] is None
    unassigned = issuer.headers(sub="sue", role=Role.staff)
    assert client.get(path, headers=unassigned).json()["items"] == []

    # A customer, even the one looked up, uses /me/reservations; anonymous callers get 401.
    for caller in (customer, issuer.headers(sub="mallory")):
        refused = client.get(path, headers=caller)
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"
    assert client.get(path).status_code == 401


def test_bad_user_ids_and_pages_are_422(client: httpx.Client, issuer: tokens.TestIssuer) -> None:
    admin = issuer.headers(role=Role.admin)
    for path in ("/customers/a%20b/reservations", f"/customers/{'x' * 65}/reservations"):
        response = client.get(path, headers=admin)
        assert response.status_code == 422, path
        assert response.json()["error"] == "validation_error"
    assert client.get("/customers/cora/reservations?limit=0", headers=admin).status_code == 422
