"""Steps shared by the browser tests: log in, find a bookable show through the API."""

import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, ROOT, Stack

SCREENSHOTS = ROOT / "docs" / "screenshots"


def log_in(page: Page, email: str, password: str) -> None:
    """Log in through the header's dialog (opening it unless the page already did)."""
    dialog = page.get_by_role("dialog")
    page.wait_for_load_state("networkidle")
    if not dialog.is_visible():
        page.get_by_role("button", name="Log in").first.click()
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("Password").fill(password)
    dialog.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()


def logged_in_page(stack: Stack, new_page: Callable[..., Any], path: str, role: str) -> Any:
    """A desktop page at `/app/{path}`, logged in as the demo user of `role`."""
    page = new_page(DESKTOP)
    page.goto(f"{stack.url}/app/{path}")
    user = stack.credentials[role]
    log_in(page, user["email"], user["password"])
    return page


def register(page: Page, email: str, password: str, name: str) -> None:
    """Create a customer account through the dialog (which then logs in)."""
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Log in").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Create an account").click()
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("Password").fill(password)
    dialog.get_by_label("Your name").fill(name)
    dialog.get_by_role("button", name="Create account").click()
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()


def bookable_show(stack: Stack, *, city: str = "Paris", skip: int = 0) -> dict[str, Any]:
    """A show of the city's first cinema that starts in more than an hour."""
    cinemas = stack.get(f"/directory/cinemas?city={city}")
    cinema = cinemas[0] if isinstance(cinemas, list) else cinemas["items"][0]
    listing = stack.get(f"/cinemas/{cinema['id']}/shows?limit=200")
    shows = listing if isinstance(listing, list) else listing["items"]
    soon = datetime.now(UTC) + timedelta(hours=1)
    future = sorted(
        (s for s in shows if s["status"] == "scheduled" and _aware(s["starts_at"]) > soon),
        key=lambda s: str(s["starts_at"]),
    )
    # Neither a hall made by another test nor the demo's on-sale (it sells through its line).
    demo = (s for s in future if not s["hall_name"].startswith(("Door test", "Premiere")))
    plain = (s for s in demo if not stack.get(f"/shows/{s['id']}/onsale")["waiting_room"])
    for _ in range(skip):
        next(plain)
    return {**next(plain), "cinema": cinema}


def imminent_show(stack: Stack, *, cinema_id: str) -> dict[str, Any]:
    """A show in a new hall whose doors are open (it starts in 40 minutes: check-in allowed)."""
    token = stack.token("admin")
    layout: dict[str, Any] = {
        "name": f"Door test {uuid.uuid4().hex[:6]}",
        "rows": ["AAAA_AAAA", "PPPP_PPPP"],
        "legend": {"A": "standard", "P": "premium"},
    }
    hall = stack.post(f"/cinemas/{cinema_id}/halls", layout, token)
    cinema = stack.get(f"/directory/cinemas/{cinema_id}")
    movie = stack.get(f"/regions/{cinema['region']}/movies?limit=1")["items"][0]
    start = (datetime.now(UTC) + timedelta(minutes=40)).replace(second=0, microsecond=0)
    body = {
        "movie_id": movie["id"],
        "starts_at": start.isoformat(),
        "prices": {"standard": 1150, "premium": 1450},
    }
    show: dict[str, Any] = stack.post(f"/halls/{hall['id']}/shows", body, token)
    zone = ZoneInfo(show["timezone"])
    show["local_time"] = _aware(show["starts_at"]).astimezone(zone).strftime("%H:%M")
    return show


def _aware(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def local_day(show: dict[str, Any]) -> str:
    """The show's start date in its cinema's timezone, as YYYY-MM-DD."""
    return _aware(show["starts_at"]).astimezone(ZoneInfo(show["timezone"])).date().isoformat()


def open_show(page: Page, show: dict[str, Any]) -> None:
    """Pick city, cinema, date and movie, then open the show's seat map."""
    page.get_by_label("City").select_option(show["cinema"]["city"])
    expect(page.get_by_label("Cinema")).to_have_value(show["cinema"]["id"])
    page.get_by_label("Date").fill(local_day(show))
    page.get_by_label("Movie").select_option(label=show["movie_title"])
    start = _aware(show["starts_at"]).astimezone(ZoneInfo(show["timezone"])).strftime("%H:%M")
    page.get_by_role("button", name=f"{show['movie_title']} at {start}").click()
    expect(page.get_by_role("group", name=f"Seats of {show['hall_name']}")).to_be_visible()


def wait_for_qr_images(page: Page) -> None:
    """Wait until every ticket's QR code image (fetched from its region) has loaded."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.qr')].every((i) => i.complete && i.naturalWidth)"
    )


def publish(png: Path, name: str) -> None:
    """Copy a step's screenshot to docs/screenshots/ (linked from docs/frontends.md).

    Only with PUBLISH_SCREENSHOTS=1, so that a test run leaves the work tree as it was.
    """
    if os.environ.get("PUBLISH_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, SCREENSHOTS / name)
