"""A customer books seats from start to finish; two customers race for one seat."""

import re
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, Route, ViewportSize, expect

from tests.browser.conftest import DESKTOP, PHONE, Shots, Stack
from tests.browser.helpers import (
    bookable_show,
    local_day,
    log_in,
    logged_in_page,
    open_show,
    publish,
    register,
    wait_for_qr_images,
)
from tests.support.qr import decoded

pytestmark = pytest.mark.browser

FREE_SEAT = re.compile(r"^Row [A-Z]+ seat \d+, standard, .*, free$")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_customer_books_two_seats(
    stack: Stack, new_page: Any, shots: Shots, viewport: ViewportSize
) -> None:
    """Log in, choose city, cinema, movie and show, pick two seats, hold, pay, see tickets."""
    show = bookable_show(stack, skip=0 if viewport is DESKTOP else 1)
    page = new_page(viewport)
    page.goto(f"{stack.url}/app/")
    expect(page.get_by_label("City")).to_contain_text(show["cinema"]["city"])
    shots.take(page, "start")
    customer = stack.credentials["customer"]
    log_in(page, customer["email"], customer["password"])
    open_show(page, show)
    shots.take(page, "seat-map")

    if viewport is DESKTOP:
        labels = _pick_two_seats(page, shots)
    else:
        page.get_by_label("Number of seats").select_option("2")
        page.get_by_role("button", name="Hold best seats").click()
    expect(page.get_by_role("heading", name="Your seats are held")).to_be_visible()
    expect(page.get_by_role("timer")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    mine = page.get_by_role("button", name=re.compile(r", yours, held$"))
    expect(mine).to_have_count(2)
    if viewport is not DESKTOP:
        labels = [_short(str(mine.nth(i).get_attribute("aria-label"))) for i in range(2)]
    shots.take(page, "held")

    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.locator("#pay-notice")).to_contain_text("Payment failed (card_declined)")
    shots.take(page, "declined")

    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay", exact=True).click()
    tickets = page.get_by_role("article", name=re.compile("^Ticket "))
    expect(tickets).to_have_count(2)
    expect(page.get_by_role("img", name=re.compile("^QR code of ticket "))).to_have_count(2)
    wait_for_qr_images(page)
    codes = set(page.locator(".ticket .code").all_inner_texts())
    assert decoded(shots.take(page, "tickets")) == codes, "the QR codes scan as the ticket codes"

    page.get_by_role("button", name="My reservations").click()
    rows = page.get_by_role("row").filter(has_text=show["movie_title"])
    row = rows.filter(has_text=", ".join(sorted(labels, key=_seat_order))).first  # newest first
    expect(row).to_contain_text("confirmed")
    shots.take(page, "my-reservations")
    assert not page.js_errors


def _pick_two_seats(page: Page, shots: Shots) -> list[str]:
    """Pick one seat with the mouse and one with the keyboard, then hold them."""
    first = page.get_by_role("button", name=FREE_SEAT).nth(10)
    names = [str(first.get_attribute("aria-label"))]
    first.click()
    focused = page.locator(".seat:focus")
    for _ in range(20):  # arrow right to the next free seat of the row
        page.keyboard.press("ArrowRight")
        names.append(str(focused.get_attribute("aria-label")))
        if names[-1].endswith(", free"):
            break
    page.keyboard.press("Space")
    expect(page.locator("#selection")).to_contain_text("2 seats")
    expect(page.get_by_role("button", name=re.compile(r", selected$"))).to_have_count(2)
    shots.take(page, "two-selected")
    page.get_by_role("button", name="Hold selected seats").click()
    return [_short(names[0]), _short(names[-1])]


def _short(name: str) -> str:
    """'Row B seat 7, standard, ...' -> 'B7', as a reservation lists its seats."""
    return re.sub(r"^Row (\w+) seat (\d+),.*", r"\1\2", name)


def _seat_order(label: str) -> tuple[str, int]:
    row = label.rstrip("0123456789")
    return row, int(label[len(row) :])


def test_two_customers_race_for_one_seat(stack: Stack, new_page: Any, shots: Shots) -> None:
    """Both pick the same seat; the first hold wins and the other sees a clear message."""
    show = bookable_show(stack, skip=2)
    pages = [new_page(DESKTOP), new_page(DESKTOP)]
    for page in pages:
        page.goto(f"{stack.url}/app/")
    customer = stack.credentials["customer"]
    log_in(pages[0], customer["email"], customer["password"])
    register(pages[1], f"rival-{uuid.uuid4().hex[:8]}@example.com", "rival-password-1", "Rival")
    shots.take(pages[1], "rival-registered")
    open_show(pages[0], show)
    # The rival follows a shared link to the seat map (the address names the show).
    link = pages[0].url
    assert link.endswith(f"#show={show['id']}")
    pages[1].goto(link.replace("/app/#", "/app/?shared=1#"))
    expect(pages[1].get_by_role("group", name=f"Seats of {show['hall_name']}")).to_be_visible()
    seat_name = pages[0].get_by_role("button", name=FREE_SEAT).nth(20).get_attribute("aria-label")
    assert seat_name
    for page in pages:
        page.get_by_role("button", name=seat_name, exact=True).click()
    shots.take(pages[1], "both-picked")
    # Both click before either answer arrives: the database decides who wins.
    for page in pages:
        page.get_by_role("button", name="Hold selected seats").click()
    held = [page.get_by_role("heading", name="Your seats are held") for page in pages]
    expect(pages[0].locator("#checkout, #seat-notice.notice-error").first).to_be_visible()
    expect(pages[1].locator("#checkout, #seat-notice.notice-error").first).to_be_visible()
    winners = [i for i, heading in enumerate(held) if heading.is_visible()]
    assert len(winners) == 1, "exactly one customer holds the seat"
    winner, loser = pages[winners[0]], pages[1 - winners[0]]
    expect(loser.locator("#seat-notice")).to_contain_text("just taken")
    expect(loser.get_by_role("button", name=re.compile(r"held by someone$"))).not_to_have_count(0)
    shots.take(loser, "loser-message")
    shots.take(winner, "winner-held")


def _buy(stack: Stack, token: str, show: dict[str, Any], count: int = 1) -> dict[str, Any]:
    """Hold and pay `count` best seats through the API (as another tab or customer would)."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    held = httpx.post(
        f"{stack.url}/shows/{show['id']}/best-available",
        json={"count": count, "seat_type": "standard"},
        headers={"Authorization": f"Bearer {token}", **key},
        timeout=30,
    )
    assert held.status_code == 201, held.text
    paid = httpx.post(
        f"{stack.url}/reservations/{held.json()['id']}/payments",
        json={"method": "card", "card_number": "4242424242424242"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )
    assert paid.is_success, paid.text
    reservation: dict[str, Any] = held.json()
    return reservation


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_my_reservations_after_login_grouped_with_place_zone_and_refund(
    stack: Stack, new_page: Any, shots: Shots, viewport: ViewportSize
) -> None:
    """Log in from the tab: the list appears at once, grouped, with city, hall, zone, refund."""
    customer = stack.credentials["customer"]
    token = stack.token("customer")
    later = bookable_show(stack, skip=4 if viewport is DESKTOP else 5)
    bought = _buy(stack, token, later)
    dropped = _buy(stack, token, bookable_show(stack, city="New York", skip=3))
    stack.post(f"/reservations/{dropped['id']}/cancel", {}, token)
    page = new_page(viewport)
    page.goto(f"{stack.url}/app/")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="My reservations").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Your name")).to_be_hidden()  # log-in mode asks no name
    size = "desktop" if viewport is DESKTOP else "phone"
    publish(shots.take(page, "login", full_page=False), f"login-dialog-{size}.png")
    dialog.get_by_label("Email").fill(customer["email"])
    dialog.get_by_label("Password").fill(customer["password"])
    dialog.get_by_role("button", name="Log in").click()
    upcoming = page.locator(
        ".mine-group", has=page.get_by_role("heading", name=re.compile("^Upcoming"))
    )
    expect(upcoming.get_by_role("row").filter(has_text=later["movie_title"]).first).to_be_visible()
    starts = datetime.fromisoformat(later["starts_at"]).astimezone(ZoneInfo(later["timezone"]))
    row = (
        upcoming.get_by_role("row")
        .filter(has_text=", ".join(s["label"] for s in bought["seats"]))
        .filter(has_text=later["movie_title"])
        .filter(has_text=starts.strftime(", %H:%M ("))
    )
    expect(row).to_contain_text("Lumière Bastille, Paris")
    expect(row).to_contain_text(later["hall_name"])
    expect(row).to_contain_text(re.compile(r"\(Paris time, UTC\+\d\)"))
    refund = f"{bought['amount_minor'] // 100}.{bought['amount_minor'] % 100:02d} EUR"
    cancel = row.get_by_role(
        "button", name=re.compile(f"^Cancel reservation .* get {refund} back$")
    )
    expect(cancel).to_have_text(f"Cancel (refund {refund})")
    # The demo's early show starts within the hour: no Cancel the API would refuse.
    early = upcoming.get_by_role("row").filter(has_text="No cancel within 60 min")
    expect(early.first).to_be_visible()
    expect(early.first.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)
    folded = page.locator("details.mine-group")
    expect(folded.filter(has_text="Canceled or expired")).not_to_have_attribute("open", "")
    publish(
        shots.take(page, "mine"),
        f"my-reservations-{size}.png",
    )
    folded.filter(has_text="Canceled or expired").locator("summary").click()
    expect(page.get_by_role("row").filter(has_text="New York time")).not_to_have_count(0)
    page.on("dialog", lambda box: box.accept())
    cancel.click()
    expect(page.locator("#mine-notice")).to_contain_text(f"{refund} is on its way back")
    assert not page.js_errors


def test_seats_taken_elsewhere_appear_without_reload(stack: Stack, new_page: Any) -> None:
    """Another customer buys while the map is open: it turns sold; quiet polls are 304s."""
    show = bookable_show(stack, skip=6)
    page = new_page(DESKTOP)
    statuses: list[int] = []
    page.on(
        "response",
        lambda answer: statuses.append(answer.status) if answer.url.endswith("/seats") else None,
    )
    page.goto(f"{stack.url}/app/#show={show['id']}")
    expect(page.get_by_role("group", name=f"Seats of {show['hall_name']}")).to_be_visible()
    deadline = time.monotonic() + 20
    while 304 not in statuses and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert 304 in statuses, "an unchanged map is revalidated, not downloaded again"
    bought = _buy(stack, stack.token("customer"), show)
    for seat in bought["seats"]:
        label = f"Row {seat['row_label']} seat {seat['number']}, standard"
        expect(page.get_by_role("button", name=re.compile(f"^{label}, .*, sold$"))).to_be_visible()
    assert not page.js_errors


def test_best_available_shows_its_price_and_any_means_cheapest(
    stack: Stack, new_page: Any, shots: Shots
) -> None:
    """Any picks the cheapest type with a block (standard here, never VIP); the price shows first."""
    show = bookable_show(stack, skip=8)
    page = logged_in_page(stack, new_page, "", "customer")
    open_show(page, show)
    page.get_by_label("Number of seats").select_option("2")
    expect(page.locator("#best-price")).to_have_text("2 \u00d7 Standard at 11.50 EUR = 23.00 EUR")
    page.get_by_label("Seat type").select_option("vip")
    expect(page.locator("#best-price")).to_have_text("2 \u00d7 VIP at 19.00 EUR = 38.00 EUR")
    expect(page.get_by_role("button", name="Hold best seats (38.00 EUR)")).to_be_visible()
    page.get_by_label("Seat type").select_option("")
    page.locator("#best-form").scroll_into_view_if_needed()
    publish(shots.take(page, "best-price", full_page=False), "best-price-desktop.png")
    page.set_viewport_size(PHONE)
    page.locator("#best-form").scroll_into_view_if_needed()
    publish(shots.take(page, "best-price-phone", full_page=False), "best-price-phone.png")
    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="Hold best seats (23.00 EUR)").click()
    expect(
        page.get_by_role("button", name=re.compile(r", standard, .*, yours, held$"))
    ).to_have_count(2)
    expect(page.locator("#hold-summary")).to_contain_text("Total 23.00 EUR")
    page.get_by_role("button", name="Release seats").click()
    # The rule behind "Any": a type counts only with `count` free seats side by side.
    blocks = page.evaluate("""async () => {
      const { hasBlock } = await import("/app/js/customer.js");
      const seat = (col, type, status = "free") => ({grid_row: 0, grid_col: col, seat_type: type, status});
      const row = [seat(0, "standard"), seat(1, "standard", "sold"), seat(2, "standard"),
                   seat(4, "premium"), seat(5, "premium")];
      return [hasBlock(row, "standard", 2), hasBlock(row, "premium", 2), hasBlock(row, "premium", 3)];
    }""")
    assert blocks == [False, True, False]
    assert not page.js_errors


def test_a_late_answer_for_an_earlier_day_does_not_replace_the_chosen_days_shows(
    stack: Stack, new_page: Any
) -> None:
    """Two quick date changes: the list is the last chosen day's, whatever answers last."""
    show = bookable_show(stack, skip=2)
    page = logged_in_page(stack, new_page, "", "customer")
    page.get_by_label("City").select_option(show["cinema"]["city"])
    expect(page.get_by_label("Cinema")).to_have_value(show["cinema"]["id"])
    page.wait_for_load_state("networkidle")
    late: list[Route] = []

    def first_answers_late(route: Route) -> None:
        if late:
            route.continue_()
        else:
            late.append(route)

    page.route("**/cinemas/*/shows?*", first_answers_late)
    day = local_day(show)
    page.get_by_label("Date").fill((date.fromisoformat(day) + timedelta(days=1)).isoformat())
    page.get_by_label("Date").fill(day)
    shown = page.locator(f"[data-show-id='{show['id']}']")
    expect(shown).to_be_visible()
    assert late, "the first day's listing was not held back"
    with page.expect_response("**/cinemas/*/shows?*"):
        late[0].continue_()
    page.wait_for_load_state("networkidle")
    expect(shown).to_be_visible()
