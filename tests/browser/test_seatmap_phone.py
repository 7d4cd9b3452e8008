"""The 180-seat hall on a 375 px phone: it fits, zooms (buttons and pinch) and pans to tap seats."""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from deploy.local import dataset
from tests.browser.conftest import DESKTOP, PHONE, Shots, Stack
from tests.browser.helpers import publish

pytestmark = pytest.mark.browser

GEOMETRY = """() => {
  const view = document.querySelector("#seatmap .seat-viewport");
  const seat = document.querySelector("#seatmap .seat").getBoundingClientRect();
  return {view: view.clientWidth, content: view.scrollWidth, seat: seat.width,
          left: view.scrollLeft, right: view.getBoundingClientRect().right};
}"""


def big_hall_show(stack: Stack, *, city: str = "Paris") -> dict[str, Any]:
    """A future show in a new 180-seat hall (the demo's "Hall 2" layout)."""
    token = stack.token("admin")
    cinema = stack.get(f"/directory/cinemas?city={city}")[0]
    layout = dataset.hall_document(dataset.SALLE) | {"name": f"Hall 180 {random.randrange(10**6)}"}
    hall = stack.post(f"/cinemas/{cinema['id']}/halls", layout, token)
    movie = stack.get(f"/regions/{cinema['region']}/movies?limit=1")["items"][0]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    body = {
        "movie_id": movie["id"],
        "starts_at": start.isoformat(),
        "prices": dataset.prices("EUR", dataset.seat_types(layout)),
    }
    show: dict[str, Any] = stack.post(f"/halls/{hall['id']}/shows", body, token)
    return show


def pinch(page: Page, *, x: float, y: float, start: float, end: float) -> None:
    """Two fingers spreading from `start` to `end` px apart around (x, y), through CDP."""
    cdp = page.context.new_cdp_session(page)

    def points(gap: float) -> list[dict[str, float]]:
        return [{"x": x - gap / 2, "y": y, "id": 1}, {"x": x + gap / 2, "y": y, "id": 2}]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(start)})
    for step in range(1, 11):
        gap = start + (end - start) * step / 10
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": points(gap)})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_big_hall_fits_a_phone_then_zooms_for_tapping(
    stack: Stack, new_page: Any, shots: Shots
) -> None:
    """375x812 with touch: whole hall visible, + makes seats >= 32 px, pinch zooms, pan reaches all."""
    show = big_hall_show(stack)
    page = new_page(PHONE, touch=True)
    page.goto(f"{stack.url}/app/#show={show['id']}")
    expect(page.get_by_role("group", name=f"Seats of {show['hall_name']}")).to_be_visible()
    fitted = page.evaluate(GEOMETRY)
    assert fitted["content"] <= fitted["view"], "the whole hall fits the screen's width"
    assert fitted["seat"] < 32
    page.locator("#seatmap").scroll_into_view_if_needed()
    publish(shots.take(page, "fit", full_page=False), "seatmap-phone-fit.png")

    page.get_by_role("button", name="Zoom in").tap()
    zoomed = page.evaluate(GEOMETRY)
    assert zoomed["seat"] >= 32, "one step in gives seats a finger can hit"
    assert zoomed["content"] > zoomed["view"], "the zoomed hall pans"
    expect(page.locator(".zoom-status")).to_contain_text("Drag to move around")
    # The right-hand block is reachable: pan to the far right and tap its last seat.
    page.locator("#seatmap .seat-viewport").evaluate("(view) => { view.scrollLeft = 1e6; }")
    last = page.locator('#seatmap .seat[data-row="E"]').last
    assert (last.bounding_box() or {"x": 1e6})["x"] + 32 <= zoomed["right"] + 1
    last.tap()
    expect(last).to_have_attribute("aria-pressed", "true")
    publish(shots.take(page, "zoomed", full_page=False), "seatmap-phone-zoomed.png")

    page.get_by_role("button", name="Fit the hall to the screen").tap()
    assert page.evaluate(GEOMETRY)["seat"] == fitted["seat"]
    box = page.locator("#seatmap .seat-viewport").bounding_box()
    assert box
    pinch(page, x=box["x"] + box["width"] / 2, y=box["y"] + 80, start=40, end=160)
    assert page.evaluate(GEOMETRY)["seat"] >= 2 * fitted["seat"], "pinching zooms in"
    assert not page.js_errors
    desktop = new_page(DESKTOP)
    desktop.goto(f"{stack.url}/app/#show={show['id']}")
    expect(desktop.get_by_role("group", name=f"Seats of {show['hall_name']}")).to_be_visible()
    assert desktop.evaluate(GEOMETRY)["seat"] == 32, "a desktop shows the hall at tapping size"
    publish(shots.take(desktop, "desktop"), "seatmap-desktop.png")
