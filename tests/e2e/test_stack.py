"""End to end through the router: every process ready, browse, hold and pay, global_api down."""

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from deploy.local.stack import LocalStack
from tests.e2e.conftest import login

TEST_CARD = "4242424242424242"


def _first_show(router: httpx.Client, region: str) -> dict[str, Any]:
    response = router.get(f"/regions/{region}/shows", params={"limit": 50})
    assert response.status_code == 200, response.text
    shows: list[dict[str, Any]] = response.json()["items"]
    assert shows, f"no demo shows in {region}"
    return max(shows, key=lambda show: show["free_seats"])


def _free_seats(router: httpx.Client, show_id: str, count: int) -> list[int]:
    response = router.get(f"/shows/{show_id}/seats")
    assert response.status_code == 200, response.text
    free = [s["seat_id"] for s in response.json()["seats"] if s["status"] == "free"]
    assert len(free) >= count
    return free[:count]


def _hold_and_pay(router: httpx.Client, auth: dict[str, str], show_id: str) -> dict[str, Any]:
    seats = _free_seats(router, show_id, 2)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    held = router.post(f"/shows/{show_id}/holds", json={"seat_ids": seats}, headers=auth | key)
    assert held.status_code == 201, held.text
    reservation = held.json()
    assert reservation["status"] == "held"
    assert sorted(s["seat_id"] for s in reservation["seats"]) == sorted(seats)
    paid = router.post(
        f"/reservations/{reservation['id']}/payments",
        json={"method": "card", "card_number": TEST_CARD},
        headers=auth | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert paid.status_code == 201, paid.text
    confirmed = router.get(f"/reservations/{reservation['id']}", headers=auth)
    assert confirmed.status_code == 200, confirmed.text
    body: dict[str, Any] = confirmed.json()
    assert body["status"] == "confirmed"
    assert all(seat["ticket_code"] for seat in body["seats"])
    return body


def test_every_process_is_ready_and_exports_metrics(stack: LocalStack) -> None:
    assert set(stack.processes) == {"global_api", "eu-west-1", "eu-west-2", "us-east-1", "router"}
    for name, proc in stack.processes.items():
        assert httpx.get(f"{proc.url}/readyz", timeout=5).status_code == 200, name
        metrics = httpx.get(f"{proc.url}/metrics", timeout=5)
        assert "http_requests_total" in metrics.text, name
    assert stack.paths.credentials.stat().st_mode & 0o777 == 0o600


def test_directory_lists_both_regions_with_their_replicas(
    stack: LocalStack, router: httpx.Client
) -> None:
    regions = {r["code"]: r for r in router.get("/directory/regions").json()}
    assert set(regions) == {"eu-west", "us-east"}
    assert len(regions["eu-west"]["endpoints"]) == 2
    assert regions["eu-west"]["endpoints"] == stack.regional_urls("eu-west")


def test_customer_logs_in_and_browses_shows_through_the_router(
    stack: LocalStack, router: httpx.Client
) -> None:
    auth = login(router, stack.credentials["customer"])
    me = router.get("/users/me", headers=auth)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == stack.credentials["customer"]["email"]
    for region in ("eu-west", "us-east"):
        show = _first_show(router, region)
        assert show["id"].startswith(f"show-{region}-")
        detail = router.get(f"/shows/{show['id']}")
        assert detail.status_code == 200
        assert detail.json()["timezone"] in {"Europe/Paris", "America/New_York"}
    search = router.get("/search/shows")
    assert search.status_code == 200, search.text
    assert search.json()["unavailable_regions"] == []
    assert {i["id"].split("-")[1] for i in search.json()["items"]} >= {"eu", "us"}


def test_customer_holds_and_pays_in_each_region(stack: LocalStack, router: httpx.Client) -> None:
    auth = login(router, stack.credentials["customer"])
    made = [
        _hold_and_pay(router, auth, _first_show(router, r)["id"]) for r in ("eu-west", "us-east")
    ]
    mine = router.get("/me/reservations", headers=auth)
    assert mine.status_code == 200, mine.text
    listed = {item["id"] for item in mine.json()["items"]}
    assert {r["id"] for r in made} <= listed


def test_booking_keeps_working_while_global_api_is_down(
    stack: LocalStack, router: httpx.Client
) -> None:
    auth = login(router, stack.credentials["customer"])
    stack.process("global_api").stop()
    try:
        assert (
            router.post("/auth/login", json={"email": "x@example.com", "password": "y"}).status_code
            >= 500
        )
        # Tokens are verified offline from the cached JWKS; routing uses the cached map.
        booked = _hold_and_pay(router, auth, _first_show(router, "eu-west")["id"])
        assert booked["cinema_id"].startswith("cin-eu-west-")
    finally:
        stack.restart("global_api")
    _wait_until(lambda: router.get("/directory/regions").status_code == 200)
    assert login(router, stack.credentials["customer"])


def _wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll `condition` (the router readmits an upstream after its rise probes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_a_killed_replica_is_routed_around(stack: LocalStack, router: httpx.Client) -> None:
    show = _first_show(router, "eu-west")
    stack.process("eu-west-1").kill()
    try:
        answers = [router.get(f"/shows/{show['id']}/seats").status_code for _ in range(20)]
        assert answers == [200] * 20
    finally:
        stack.restart("eu-west-1")
    assert router.get(f"/shows/{show['id']}").status_code == 200


def _show_starting_soon(router: httpx.Client, auth: dict[str, str], cinema: str) -> str:
    """A show in a new hall of `cinema` starting in ten minutes (doors are open)."""
    layout = {"name": f"Test {uuid.uuid4().hex[:8]}", "rows": ["AAAA", "AAAA"]}
    hall = router.post(f"/cinemas/{cinema}/halls", json=layout, headers=auth)
    assert hall.status_code == 201, hall.text
    movie = router.get("/regions/eu-west/movies").json()["items"][0]
    starts_at = datetime.now(UTC) + timedelta(minutes=10)
    show = router.post(
        f"/halls/{hall.json()['id']}/shows",
        json={
            "movie_id": movie["id"],
            "starts_at": starts_at.isoformat(),
            "prices": {"standard": 900},
        },
        headers=auth,
    )
    assert show.status_code == 201, show.text
    return str(show.json()["id"])


def test_staff_sell_at_the_counter_and_check_the_ticket_in(
    stack: LocalStack, router: httpx.Client
) -> None:
    staff = stack.credentials["staff"]
    auth = login(router, staff)
    cinema = staff["cinema_id"]
    show_id = _show_starting_soon(router, auth, cinema)
    sale = router.post(
        f"/shows/{show_id}/sales",
        json={"seat_ids": _free_seats(router, show_id, 1), "method": "cash"},
        headers=auth | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert sale.status_code == 201, sale.text
    code = sale.json()["tickets"][0]["code"]
    validate = f"/cinemas/{cinema}/tickets/validate"
    first = router.post(validate, json={"code": code}, headers=auth)
    assert first.status_code == 200, first.text
    again = router.post(validate, json={"code": code}, headers=auth)
    assert again.status_code == 409
    assert again.json()["error"] == "ticket_already_used"
    report = router.get(f"/shows/{show_id}/report", headers=auth)
    assert report.status_code == 200, report.text
    assert report.json()["sold"] == 1
    other_region = _first_show(router, "us-east")["id"]
    assert router.get(f"/shows/{other_region}/report", headers=auth).status_code == 403


def test_a_second_start_keeps_the_data_and_skips_the_demo(
    stack: LocalStack, router: httpx.Client
) -> None:
    auth = login(router, stack.credentials["customer"])
    booked = _hold_and_pay(router, auth, _first_show(router, "us-east")["id"])
    lines: list[str] = []
    stack.progress = lines.append
    stack.stop()
    stack.start()
    assert "demo: already loaded, skipping" in lines
    again = router.get(
        f"/reservations/{booked['id']}", headers=login(router, stack.credentials["customer"])
    )
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "confirmed"
    assert again.json()["seats"] == booked["seats"]
