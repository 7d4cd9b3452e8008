"""Box office: sell two seats for cash, print tickets, check one in (valid, used, wrong show)."""

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, Shots, Stack
from tests.browser.helpers import bookable_show, imminent_show, local_day, logged_in_page, publish

pytestmark = pytest.mark.browser

FREE_SEAT = re.compile(r"^Row [A-Z]+ seat \d+, premium, .*, free$")


def _check_in(page: Any, code: str | None = None) -> Any:
    """Submit the check-in form (with `code` typed in, if given); the verdict it shows."""
    if code is not None:
        page.get_by_label("Ticket code").fill(code)
    page.locator("#checkin-form").get_by_role("button", name="Check in").click()
    return page.locator(".verdict")


def test_staff_sells_and_checks_in(stack: Stack, new_page: Any, shots: Shots) -> None:
    """A counter sale issues tickets; the door admits a ticket once and only for its show."""
    staff = stack.credentials["staff"]
    show = imminent_show(stack, cinema_id=staff["cinema_id"])
    other = bookable_show(stack, city=stack.get(f"/directory/cinemas/{staff['cinema_id']}")["city"])
    page = logged_in_page(stack, new_page, "boxoffice.html", "staff")
    expect(page.get_by_label("Cinema")).to_have_value(staff["cinema_id"])
    page.get_by_label("Date").fill(local_day(show))
    page.locator("#shows button", has_text=show["movie_title"]).filter(
        has=page.locator("strong", has_text=show["local_time"])
    ).click()
    seats = page.get_by_role("button", name=FREE_SEAT)
    seats.nth(0).click()
    seats.nth(1).click()
    page.get_by_role("button", name=re.compile(r"^Sell 2 for ")).click()
    expect(page.get_by_role("article", name=re.compile("^Ticket "))).to_have_count(2)
    expect(page.locator("#sale-notice")).to_contain_text("Sold:")
    shots.take(page, "sold")
    code = page.locator(".ticket .code").first.inner_text()

    page.get_by_role("button", name="Check in", exact=True).click()
    page.get_by_label("Date").fill(local_day(other))
    page.wait_for_load_state("networkidle")
    page.get_by_label("Only admit to").select_option(other["id"])
    expect(_check_in(page, code)).to_contain_text("WRONG SHOW")
    shots.take(page, "wrong-show")
    page.get_by_label("Only admit to").select_option("")
    expect(_check_in(page)).to_contain_text("VALID")
    shots.take(page, "valid")
    verdict = _check_in(page)
    expect(verdict).to_contain_text("ALREADY USED")
    expect(verdict).to_contain_text("Checked in at")
    shots.take(page, "already-used")
    page.set_viewport_size(PHONE)
    shots.take(page, "already-used-phone")
    page.set_viewport_size(DESKTOP)

    # Look the sale up among the show's reservations and cancel it: the ticket is void.
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Sell", exact=True).click()
    row = page.locator("#bookings tr", has_text="box_office").first
    expect(row).to_contain_text("confirmed")
    row.get_by_role("button", name=re.compile("^Cancel reservation ")).click()
    expect(page.locator("#bookings-notice")).to_contain_text("Canceled; refunded 29.00 EUR")
    shots.take(page, "sale-canceled")
    page.get_by_role("button", name="Check in", exact=True).click()
    expect(_check_in(page)).to_contain_text("CANCELED TICKET")
    assert not page.js_errors


def test_demo_ticket_checks_in_and_a_malformed_code_reads_plainly(
    stack: Stack, new_page: Any, shots: Shots
) -> None:
    """The demo customer's ticket for the early show is admitted at once; a typo gets words."""
    staff = stack.credentials["staff"]
    token = stack.token("customer")
    mine = stack.get("/me/reservations", token)["items"]
    early = [r for r in mine if r["cinema_id"] == staff["cinema_id"] and r["status"] == "confirmed"]
    assert early, "the demo sold the customer tickets for an early show in the staff's cinema"
    ticket = stack.get(f"/reservations/{early[-1]['id']}/tickets", token)["tickets"][0]
    page = logged_in_page(stack, new_page, "boxoffice.html", "staff")
    page.get_by_role("button", name="Check in", exact=True).click()
    verdict = _check_in(page, "not a code!")
    expect(verdict).to_contain_text("NOT A TICKET CODE")
    expect(verdict).to_contain_text("This is not a ticket code.")
    expect(verdict).not_to_contain_text("pattern")
    publish(shots.take(page, "malformed-code"), "checkin-not-a-code-desktop.png")
    page.set_viewport_size(PHONE)
    publish(shots.take(page, "malformed-code-phone"), "checkin-not-a-code-phone.png")
    page.set_viewport_size(DESKTOP)
    expect(_check_in(page, ticket["code"])).to_contain_text("VALID")
    assert not page.js_errors


def test_customer_service_finds_a_customer_and_cancels_for_them(
    stack: Stack, new_page: Any, shots: Shots
) -> None:
    """Staff see the customer's reservations at their cinema only; admins see every region's."""
    customer = stack.credentials["customer"]
    token = stack.token("customer")
    show = bookable_show(stack, skip=7)
    held = stack.post(f"/shows/{show['id']}/best-available", {"count": 1}, token)
    page = logged_in_page(stack, new_page, "boxoffice.html", "staff")
    page.get_by_role("button", name="Customers", exact=True).click()
    page.get_by_label("Customer email", exact=True).fill("nobody@example.com")
    page.get_by_role("button", name="Find customer").click()
    expect(page.locator("#customers-panel .notice")).to_contain_text("No customer with the email")
    page.get_by_label("Customer email", exact=True).fill(customer["email"])
    page.get_by_role("button", name="Find customer").click()
    rows = page.locator("#customers-panel tbody tr")
    expect(rows.filter(has_text=show["movie_title"]).first).to_be_visible()
    expect(rows.filter(has_text="New York")).to_have_count(0)  # not this clerk's cinema
    expect(rows.filter(has_text="Paris").first).to_be_visible()
    page.get_by_role("button", name=re.compile("^Tickets of ")).first.click()
    expect(page.get_by_role("link", name=f"Email the codes to {customer['email']}")).to_be_visible()
    expect(page.locator("#customers-panel .ticket").first).to_be_visible()
    publish(shots.take(page, "customer-service"), "customer-service-desktop.png")
    page.on("dialog", lambda box: box.accept())
    page.get_by_role("button", name=f"Cancel reservation {held['id']}").click()
    expect(page.locator("#customers-panel .notice")).to_contain_text(f"Canceled {held['id']}")
    expect(rows.filter(has_text="canceled").first).to_be_visible()
    page.set_viewport_size(PHONE)
    publish(shots.take(page, "customer-service-phone"), "customer-service-phone.png")
    page.set_viewport_size(DESKTOP)
    assert not page.js_errors

    admin_page = logged_in_page(stack, new_page, "admin.html#customers", "admin")
    admin_page.get_by_label("Customer email", exact=True).fill(customer["email"])
    admin_page.get_by_role("button", name="Find customer").click()
    admin_rows = admin_page.locator("tbody tr")
    expect(admin_rows.filter(has_text="New York").first).to_be_visible()
    expect(admin_rows.filter(has_text="Paris").first).to_be_visible()
    assert not admin_page.js_errors
