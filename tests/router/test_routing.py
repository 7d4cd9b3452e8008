"""Routing, header handling, limits, fan-out and the admin view, through a real router process."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from common.ids import new_id
from harness.procs import FakeDirectory, Proc, client_from, wait_all_healthy
from harness.tokens import TestIssuer
from schemas.auth import Role
from schemas.pagination import decode_cursor
from tests.router.conftest import CINEMA_EU, LOAD_BALANCER


@pytest.fixture
def client(router_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the router, once every endpoint is in rotation."""
    wait_all_healthy(router_url)
    with httpx.Client(base_url=router_url, timeout=5.0) as http:
        yield http


def _echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_region_prefix_is_stripped_and_query_kept(client: httpx.Client) -> None:
    echo = _echo(client.get("/regions/us-east/movies?q=dune&limit=5"))
    assert (echo["region"], echo["path"], echo["query"]) == ("us-east", "/movies", "q=dune&limit=5")


def test_resource_ids_route_to_their_region(client: httpx.Client) -> None:
    show = new_id("show", "us-east")
    echo = _echo(client.post(f"/shows/{show}/holds", json={"seats": [1]}))
    assert (echo["region"], echo["path"], echo["method"]) == (
        "us-east",
        f"/shows/{show}/holds",
        "POST",
    )
    for kind, collection in (("res", "reservations"), ("pay", "payments"), ("hall", "halls")):
        rid = new_id(kind, "eu-west")
        echo = _echo(client.get(f"/{collection}/{rid}/anything"))
        assert (echo["region"], echo["path"]) == ("eu-west", f"/{collection}/{rid}/anything")


def test_cinema_routes_by_directory_map(client: httpx.Client) -> None:
    echo = _echo(client.get(f"/cinemas/{CINEMA_EU}/shows"))
    assert (echo["region"], echo["path"]) == ("eu-west", f"/cinemas/{CINEMA_EU}/shows")


def test_global_prefixes_go_to_global_api(client: httpx.Client) -> None:
    for path in ("/auth/refresh", "/users/me", "/directory/regions", "/.well-known/jwks.json"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert _echo(client.get("/users/me"))["upstream"] == "global"


def test_unknown_cinema_refreshes_the_map_once(
    client: httpx.Client, fake_directory: FakeDirectory
) -> None:
    fresh = new_id("cin", "us-east")
    before = fake_directory.map_fetches
    response = client.get(f"/cinemas/{fresh}/halls")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert fake_directory.map_fetches - before <= 2  # the miss refresh (plus maybe one periodic)

    fake_directory.document["cinemas"].append(
        {
            "id": fresh,
            "name": "New",
            "city": "NYC",
            "address": "",
            "timezone": "UTC",
            "region": "us-east",
        }
    )
    fake_directory.document["version"] = "v2"
    echo = _echo(client.get(f"/cinemas/{fresh}/halls"))
    assert echo["region"] == "us-east"


@pytest.mark.parametrize(
    "path",
    [
        "/shows/not-an-id",
        f"/shows/{new_id('res', 'eu-west')}",  # wrong kind for the collection
        f"/shows/{new_id('show', 'mars-north')}",  # unknown region
        "/regions/mars-north/shows",
        "/regions/eu-west",
        "/shows",
        "/nowhere",
    ],
)
def test_unroutable_paths_are_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_forwarded_for_names_the_client(client: httpx.Client) -> None:
    seen = _echo(client.get("/regions/eu-west/x"))["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


def test_request_id_is_passed_on_or_made(client: httpx.Client) -> None:
    response = client.get("/regions/eu-west/x", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert _echo(response)["headers"]["x-request-id"] == "abc-123"
    response = client.get("/regions/eu-west/x")
    made = response.headers["x-request-id"]
    assert len(made) >= 16
    assert _echo(response)["headers"]["x-request-id"] == made


def test_forwarded_for_and_hop_by_hop_headers(client: httpx.Client) -> None:
    headers = {
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "Keep-Alive": "timeout=300",
        "Proxy-Authorization": "Basic eA==",
        "TE": "trailers",
        "X-Forwarded-For": "203.0.113.9",
        "X-Kept": "yes",
    }
    response = client.get("/regions/eu-west/hop", headers=headers)
    seen = _echo(response)["headers"]
    for dropped in ("x-secret-hop", "keep-alive", "proxy-authorization", "te"):
        assert dropped not in seen, dropped
    assert seen["x-kept"] == "yes"
    # The client's own X-Forwarded-For is replaced by the address it connected from.
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert "keep-alive" not in response.headers
    assert "proxy-authenticate" not in response.headers
    assert len(response.headers.get_list("date")) == 1


def test_body_limit_is_413(client: httpx.Client) -> None:
    response = client.post("/regions/eu-west/movies", content=b"x" * 2048)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b"y" * 400

    response = client.post("/regions/eu-west/movies", content=chunks())
    assert response.status_code == 413
    assert _echo(client.post("/regions/eu-west/movies", content=b"z" * 1000))["body_len"] == 1000


def test_head_and_bodyless_answers_leave_the_connection_usable(client: httpx.Client) -> None:
    for _ in range(3):
        head = client.head("/regions/eu-west/x")
        assert head.status_code == 200
        assert head.content == b""
        assert _echo(client.get("/regions/eu-west/x"))["method"] == "GET"


def test_large_response_is_streamed_intact(client: httpx.Client) -> None:
    response = client.get("/regions/eu-west/big?n=3000000")
    assert response.status_code == 200
    assert len(response.content) == 3_000_000


@pytest.fixture
def balanced(router_url: str) -> Iterator[httpx.Client]:
    """A client behind the trusted load balancer, named by its X-Forwarded-For."""
    with client_from(LOAD_BALANCER, router_url) as http:
        yield http


def test_hold_endpoints_are_rate_limited(balanced: httpx.Client) -> None:
    client = balanced
    show = new_id("show", "eu-west")
    me = {"X-Forwarded-For": "198.51.100.7"}  # a client of its own, behind the load balancer
    statuses = [
        client.post(f"/shows/{show}/holds", json={}, headers=me).status_code for _ in range(5)
    ]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    response = client.post(f"/shows/{show}/best-available", json={}, headers=me)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1
    assert client.get(f"/shows/{show}/seats", headers=me).status_code == 200  # reads are free
    other = {"X-Forwarded-For": "198.51.100.8"}
    assert client.post(f"/shows/{show}/holds", json={}, headers=other).status_code == 200


def test_login_is_rate_limited(balanced: httpx.Client) -> None:
    me = {"X-Forwarded-For": "198.51.100.9"}
    statuses = [balanced.post("/auth/login", json={}, headers=me).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_search_shows_merges_regions_by_start(client: httpx.Client) -> None:
    response = client.get("/search/shows", params={"q": "dune", "limit": 4})
    assert response.status_code == 200
    body = response.json()
    starts = [item["starts_at"][11:13] for item in body["items"]]
    assert starts == ["00", "01", "02", "03"]
    assert body["regions"] == {"eu-west": "ok", "us-east": "ok"}
    assert body["unavailable_regions"] == []
    bad = client.get("/search/shows", params={"bad": "1"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "validation_error"


def test_my_reservations_need_a_token_and_merge_newest_first(
    client: httpx.Client, issuer: TestIssuer
) -> None:
    assert client.get("/me/reservations").status_code == 401
    response = client.get("/me/reservations", headers=issuer.headers())
    assert response.status_code == 200
    ids = [item["id"] for item in response.json()["items"]]
    assert ids == ["res-us-east-4", "res-eu-west-3", "res-us-east-2", "res-eu-west-1"]
    assert response.json()["next_before"] is None


def test_my_reservations_page_ends_with_the_key_of_its_last_item(
    client: httpx.Client, issuer: TestIssuer
) -> None:
    page = client.get("/me/reservations", params={"limit": 2}, headers=issuer.headers()).json()
    assert [item["id"] for item in page["items"]] == ["res-us-east-4", "res-eu-west-3"]
    at, rid = decode_cursor(page["next_before"])
    assert (at.isoformat(), rid) == ("2029-12-03T00:00:00+00:00", "res-eu-west-3")


def test_customer_reservations_fan_out_for_staff_and_admins_only(
    client: httpx.Client, issuer: TestIssuer
) -> None:
    path = "/router/customers/user-1/reservations"
    assert client.get(path).status_code == 401
    refused = client.get(path, headers=issuer.headers())
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    for role in (Role.staff, Role.admin):
        response = client.get(path, headers=issuer.headers(role=role))
        assert response.status_code == 200, response.text
        ids = [item["id"] for item in response.json()["items"]]
        assert ids == ["res-us-east-4", "res-eu-west-3", "res-us-east-2", "res-eu-west-1"]
    bad = client.get(
        "/router/customers/a%20b/reservations", headers=issuer.headers(role=Role.admin)
    )
    assert bad.status_code == 422


def test_router_regions_hides_urls_from_anonymous_callers(
    client: httpx.Client, issuer: TestIssuer, upstreams: dict[str, Proc]
) -> None:
    anonymous = client.get("/router/regions").json()
    eu = next(region for region in anonymous["regions"] if region["code"] == "eu-west")
    assert eu["state"] == "up"
    assert eu["healthy_endpoints"] == 2
    assert all(endpoint["url"] is None for endpoint in eu["endpoints"])
    admin = client.get("/router/regions", headers=issuer.headers(role=Role.admin)).json()
    urls = {e["url"] for region in admin["regions"] for e in region["endpoints"]}
    assert urls == {proc.url for proc in upstreams.values()}
    assert admin["map_source"] == "global"


def test_ops_endpoints(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").text
    assert "router_requests_total" in metrics
    assert "router_endpoint_healthy" in metrics
    assert "router_endpoint_in_flight" in metrics


def test_frontends_are_served_under_app(client: httpx.Client) -> None:
    for path in ("/app/", "/app/admin.html"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "text/html" in response.headers["content-type"]
    assert client.get("/app/nope.html").status_code == 404
