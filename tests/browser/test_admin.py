"""An admin schedules a show on the calendar and is told about a clashing one."""

import random
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Shots, Stack
from tests.browser.helpers import logged_in_page, publish

pytestmark = pytest.mark.browser


def test_admin_creates_show_and_sees_overlap(stack: Stack, new_page: Any, shots: Shots) -> None:
    """Create a show at 20:00, then one at 21:00 in the same hall: 409 names the first."""
    paris = stack.get("/directory/cinemas?city=Paris")[0]["id"]
    page = logged_in_page(stack, new_page, "admin.html", "admin")
    expect(page.get_by_role("cell", name="eu-west (Europe West)")).to_be_visible()
    shots.take(page, "regions")

    page.get_by_role("button", name="Halls", exact=True).click()
    page.get_by_label("Cinema").select_option(paris)
    page.get_by_role("button", name="New hall").click()
    page.get_by_label("Rows (front first; _ is an aisle)").fill("AAAA_AAAA\nPPPP_PPPP\nWC______")
    expect(page.get_by_text(re.compile(r"^18 seats, 3 rows . 9 columns\.$"))).to_be_visible()
    page.get_by_label("Rows (front first; _ is an aisle)").fill("AAZA")
    expect(page.get_by_role("alert")).to_contain_text('"Z" is not in the legend')
    shots.take(page, "hall-editor")

    page.get_by_role("button", name="Shows", exact=True).click()
    page.get_by_label("Cinema").select_option(paris)
    page.get_by_label("Hall").select_option(label="Studio")
    day = (date.today() + timedelta(days=random.randint(30, 330))).isoformat()
    page.get_by_label("Week starting").fill(day)
    page.get_by_label("Date (cinema's local time)").fill(day)
    page.get_by_label("Start time").fill("20:00")
    page.get_by_role("button", name="Create show").click()
    expect(page.get_by_text("Show created:")).to_be_visible()
    expect(page.locator(".cal-show")).to_have_count(1)
    page.locator(".cal-show").click()
    expect(page.get_by_role("img", name=re.compile("^Revenue by seat type"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"0 sold, 0 held, \d+ free of \d+"))).to_be_visible()
    shots.take(page, "show-created")

    page.get_by_label("Start time").fill("21:00")
    page.get_by_role("button", name="Create show").click()
    error = page.locator(".notice-error")
    expect(error).to_contain_text("already has a show at that time")
    expect(error).to_contain_text(re.compile(r"clashes with .*20:00"))
    shots.take(page, "overlap-error")
    page.set_viewport_size(PHONE)
    shots.take(page, "overlap-error-phone")

    page.get_by_role("button", name="Reports", exact=True).click()
    page.get_by_role("button", name="Show reports").click()
    expect(page.get_by_text(re.compile("^(Revenue per movie|No sales) in eu-west"))).to_be_visible()
    shots.take(page, "reports-phone")
    assert not page.js_errors


def test_reports_are_compact_charts_with_csv(stack: Stack, new_page: Any, shots: Shots) -> None:
    """Occupancy and revenue per day as columns, movies without sales folded, CSV downloads."""
    paris = stack.get("/directory/cinemas?city=Paris")[0]["id"]
    page = logged_in_page(stack, new_page, "admin.html#reports", "admin")
    page.get_by_label("Cinema (daily figures)").select_option(paris)
    page.get_by_role("button", name="Show reports").click()
    expect(page.get_by_role("img", name=re.compile("^Occupancy per day: "))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile(r"^Revenue per day \(EUR\): "))).to_be_visible()
    zero_rows = page.locator(".bars text", has_text=re.compile(r"^0(\.00 EUR| tickets)$"))
    expect(zero_rows).to_have_count(0)
    with page.expect_download() as caught:
        page.get_by_role("link", name=re.compile(r"^Download daily-")).click()
    lines = Path(caught.value.path()).read_text().splitlines()
    assert lines[0] == "Day,Shows,Capacity,Tickets,Occupancy %,Revenue,Refunds,Currency"
    assert len(lines) >= 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\d,\d+,\d+,\d+,[\d.]+,\d+\.\d\d,\d+\.\d\d,EUR", lines[1])
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 1800, f"the reports page is {height} px tall"
    publish(shots.take(page, "reports"), "reports-desktop.png")
    page.set_viewport_size(PHONE)
    publish(shots.take(page, "reports-phone"), "reports-phone.png")
    assert not page.js_errors


def test_staff_cinemas_are_a_checklist_only_for_staff(
    stack: Stack, new_page: Any, shots: Shots
) -> None:
    """Every cinema is a visible checkbox; choosing another role than staff clears and locks them."""
    staff = stack.credentials["staff"]
    page = logged_in_page(stack, new_page, "admin.html#users", "admin")
    page.get_by_label("Search email or name").fill(staff["email"])
    page.get_by_role("button", name="Search", exact=True).click()
    group = page.get_by_role("group", name=f"Cinemas of {staff['email']}")
    boxes = group.get_by_role("checkbox")
    expect(boxes).to_have_count(len(stack.get("/directory/cinemas")))
    for n in range(boxes.count()):
        expect(boxes.nth(n)).to_be_in_viewport()
    checked = group.get_by_role("checkbox", checked=True)
    expect(checked).to_have_count(1)
    publish(shots.take(page, "users"), "users-desktop.png")
    page.get_by_label(f"Role of {staff['email']}").select_option("customer")
    expect(checked).to_have_count(0)
    expect(boxes.first).to_be_disabled()
    page.set_viewport_size(PHONE)
    publish(shots.take(page, "users-phone"), "users-phone.png")
    assert not page.js_errors
