"""A customer waits in an on-sale's waiting room, is admitted to the seat map; others are told sold out."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, Shots, Stack
from tests.browser.helpers import log_in

pytestmark = pytest.mark.browser


def _customer(stack: Stack) -> dict[str, str]:
    """A new customer account; its credentials and token."""
    email = f"line-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": "line-password-1", "display_name": "Line Tester"}
    httpx.post(f"{stack.url}/auth/register", json=body, timeout=30).raise_for_status()
    login = {"email": email, "password": body["password"]}
    answer = httpx.post(f"{stack.url}/auth/login", json=login, timeout=30)
    answer.raise_for_status()
    return {**login, "token": answer.json()["access_token"]}


def _small_show(stack: Stack) -> dict[str, Any]:
    """A show in a new two-seat hall, tomorrow, with an on-sale opening in a few seconds."""
    token = stack.token("admin")
    cinemas = stack.get("/directory/cinemas?city=Paris")
    cinema = cinemas[0] if isinstance(cinemas, list) else cinemas["items"][0]
    layout = {
        "name": f"Premiere {uuid.uuid4().hex[:6]}",
        "rows": ["AA"],
        "legend": {"A": "standard"},
    }
    hall = stack.post(f"/cinemas/{cinema['id']}/halls", layout, token)
    movie = stack.get(f"/regions/{cinema['region']}/movies?limit=1")["items"][0]
    start = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    body = {"movie_id": movie["id"], "starts_at": start.isoformat(), "prices": {"standard": 1150}}
    show: dict[str, Any] = stack.post(f"/halls/{hall['id']}/shows", body, token)
    onsale = {
        "opens_at": (datetime.now(UTC) + timedelta(seconds=6)).isoformat(),
        "max_admit_per_second": 2,
    }
    answer = httpx.put(
        f"{stack.url}/shows/{show['id']}/onsale",
        json=onsale,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return show


def test_waiting_room_admits_to_the_seat_map_then_tells_the_rest_sold_out(
    stack: Stack, new_page: Any, shots: Shots
) -> None:
    show = _small_show(stack)
    buyer, latecomer = _customer(stack), _customer(stack)
    page = new_page(DESKTOP)
    polls: list[dict[str, str]] = []  # the headers of the page's GETs of its place in line
    watches: list[str] = []  # the page's held watches of the line (router/proxy/watch.py)
    page.on(
        "request",
        lambda r: (
            polls.append(r.headers) if r.method == "GET" and r.url.endswith("/line") else None
        ),
    )
    maps: list[dict[str, str]] = []  # the headers of the page's seat-map GETs
    page.on(
        "request",
        lambda r: maps.append(r.headers) if r.url.split("?")[0].endswith("/seats") else None,
    )
    page.on("request", lambda r: watches.append(r.url) if "/line/watch?" in r.url else None)
    page.goto(f"{stack.url}/app/")
    log_in(page, buyer["email"], buyer["password"])
    page.goto(f"{stack.url}/app/#show={show['id']}")
    page.reload()

    room = page.locator("#waiting-room")
    expect(room).to_contain_text("You are in the waiting room")
    expect(room).to_contain_text("arriving earlier gives no advantage")
    expect(page.locator("#picker")).to_be_hidden()
    shots.take(page, "waiting-before-opening")

    expect(room).to_contain_text("It's your turn", timeout=30_000)
    seats = page.get_by_role("group", name=f"Seats of {show['hall_name']}")
    expect(seats).to_be_visible()
    shots.take(page, "admitted")
    # The page polls with the line ticket its join got: the region answers from memory.
    assert any("x-line-ticket" in headers for headers in polls), polls
    # The admitted page's seat maps carry its pass, so they go ahead of new work under load.
    assert maps, "no seat-map GET"
    assert all("x-admission-pass" in headers for headers in maps), maps
    # Between those, it waits on the router's watch rather than polling the region (with
    # `until=` once it knows its number, unless the opening's first batch already took it in).
    assert watches, "the page never held a watch"
    # It joined before the opening: its line number is its draw key (below 10^12), which it
    # watched for, asking nothing at the draw.
    assert any(re.search(r"[?&]until=[0-9]{1,12}(&|$)", url) for url in watches), watches
    page.get_by_label("Number of seats").select_option("2")
    page.get_by_role("button", name="Hold best seats").click()
    expect(page.get_by_role("heading", name="Your seats are held")).to_be_visible()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay", exact=True).click()
    tickets = page.get_by_role("article", name=re.compile("^Ticket "))
    expect(tickets).to_have_count(2, timeout=15_000)

    other = new_page(DESKTOP)
    other.goto(f"{stack.url}/app/")
    log_in(other, latecomer["email"], latecomer["password"])
    other.goto(f"{stack.url}/app/#show={show['id']}")
    other.reload()
    expect(other.locator("#waiting-room")).to_contain_text("Sold out", timeout=30_000)
    expect(other.locator("#picker")).to_be_hidden()
    shots.take(other, "sold-out")
