"""Pure helpers in the browser (money, time zones, layout preview), token refresh on
401, and the cross-region search with a hold that continues after logging in."""

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, Shots, Stack
from tests.browser.helpers import bookable_show, log_in, logged_in_page

pytestmark = pytest.mark.browser

CHECKS = """async () => {
  const ui = await import("./js/ui.js");
  const halls = await import("./js/admin-halls.js");
  const preview = halls.previewMap(["AA_A", "____", "VV"], { A: "standard", V: "vip-blocked" });
  return {
    money: [ui.money(1250, "EUR"), ui.money(5, "USD"), ui.money(-990, "EUR"), ui.money(700, "JPY")],
    minor: [ui.toMinor("12.5"), ui.toMinor("12,50"), ui.toMinor("7"), ui.toMinor("1.234"), ui.toMinor("x")],
    // 02:30 does not exist in Paris on 2026-03-29 (clocks jump 02:00 -> 03:00).
    zoned: [
      ui.zonedToIso("2026-07-01", "20:00", "Europe/Paris"),
      ui.zonedToIso("2026-12-01", "20:00", "Europe/Paris"),
      ui.zonedToIso("2026-11-01", "09:30", "America/New_York"),
    ],
    localDay: ui.localDate("2026-11-22T23:30:00Z", "Europe/Berlin"),
    preview: preview.seats.map((s) => `${s.row_label}${s.number}@${s.grid_row},${s.grid_col}:${s.status}`),
    grid: [preview.grid_rows, preview.grid_cols],
  };
}"""


def test_pure_helpers(stack: Stack, new_page: Any) -> None:
    """Formatting, parsing and time-zone conversion give the documented answers."""
    page = new_page(DESKTOP)
    page.goto(f"{stack.url}/app/")
    result = page.evaluate(CHECKS)
    assert result["money"] == ["12.50 EUR", "0.05 USD", "-9.90 EUR", "700 JPY"]
    assert result["minor"] == [1250, 1250, 700, None, None]
    assert result["zoned"] == [
        "2026-07-01T18:00:00.000Z",
        "2026-12-01T19:00:00.000Z",
        "2026-11-01T14:30:00.000Z",
    ]
    assert result["localDay"] == "2026-11-23"
    assert result["preview"] == [
        "A1@0,0:free",
        "A2@0,1:free",
        "A3@0,3:free",
        "B1@2,0:blocked",
        "B2@2,1:blocked",
    ]
    assert result["grid"] == [3, 4]
    assert not page.js_errors


def test_expired_access_token_is_refreshed(stack: Stack, new_page: Any) -> None:
    """A 401 triggers one refresh with the stored refresh token, then the call succeeds."""
    page = logged_in_page(stack, new_page, "", "customer")
    page.evaluate("""() => {
      const auth = JSON.parse(sessionStorage.getItem("cinema.auth"));
      const [head, body] = auth.access_token.split(".");
      auth.access_token = `${head}.${body}.invalid-signature`;
      sessionStorage.setItem("cinema.auth", JSON.stringify(auth));
    }""")
    page.get_by_role("button", name="My reservations").click()
    expect(page.get_by_role("heading", name="My reservations")).to_be_visible()
    expect(page.locator("#mine-notice")).not_to_have_class("notice notice-error")
    expect(page.locator("#mine table, #mine p").first).to_be_visible()
    token = page.evaluate("JSON.parse(sessionStorage.getItem('cinema.auth')).access_token")
    assert not token.endswith(".invalid-signature")
    assert not page.js_errors


def test_search_every_region_then_hold_after_login(
    stack: Stack, new_page: Any, shots: Shots
) -> None:
    """Search a movie in all cities, open a show, and hold: the login in between continues it."""
    show = bookable_show(stack, city="New York")
    page = new_page(PHONE)
    page.goto(f"{stack.url}/app/")
    page.get_by_label("Or search by title, all regions").fill(show["movie_title"][:6])
    page.get_by_role("button", name="Search everywhere").click()
    expect(page.locator("#find-notice")).to_contain_text("upcoming shows of")
    results = page.locator("#shows button", has_text="New York")
    expect(results.first).to_be_visible()
    shots.take(page, "search-results")
    results.first.click()
    page.get_by_label("Number of seats").select_option("1")
    page.get_by_role("button", name="Hold best seats").click()
    customer = stack.credentials["customer"]
    log_in(page, customer["email"], customer["password"])
    expect(page.get_by_role("heading", name="Your seats are held")).to_be_visible()
    expect(page.locator("#hold-summary")).to_contain_text("USD")
    shots.take(page, "held-after-login")
    page.get_by_role("button", name="Release seats").click()
    expect(page.locator("#checkout")).to_be_hidden()
    assert not page.js_errors


UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => el.offsetParent !== null || el.closest("dialog[open]"))
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
    && !el.getAttribute("aria-labelledby") && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


def test_every_control_has_a_label(stack: Stack, new_page: Any) -> None:
    """Inputs, selects and buttons of every page and admin section have accessible names."""
    page = new_page(DESKTOP)
    for path in ("/app/", "/app/boxoffice.html"):
        page.goto(f"{stack.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate(UNLABELLED) == [], path
    page.goto(f"{stack.url}/app/admin.html")
    admin = stack.credentials["admin"]
    log_in(page, admin["email"], admin["password"])
    for section in ("Regions", "Cinemas", "Halls", "Movies", "Shows", "Users", "Reports"):
        page.get_by_role("button", name=section, exact=True).click()
        expect(page.get_by_role("heading", name=section, level=2)).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert page.evaluate(UNLABELLED) == [], section
    assert not page.js_errors


RETRY_CALLS = """async () => {
  const { api } = await import("./js/api.js");
  const read = await api("/healthz", { auth: false });
  const keyed = await api("/retry-probe/keyed", { method: "POST", body: {}, idempotencyKey: "k-1" });
  let unkeyed = null;
  try {
    await api("/retry-probe/unkeyed", { method: "POST", body: {} });
  } catch (err) {
    unkeyed = [err.status, err.code];
  }
  return { read, keyed, unkeyed };
}"""


def test_overloaded_answers_are_retried_only_when_safe(stack: Stack, new_page: Any) -> None:
    """A 503 with Retry-After is tried again for reads and keyed writes, never for other writes."""
    page = new_page(DESKTOP)
    page.goto(f"{stack.url}/app/")
    seen: list[tuple[str, str | None]] = []
    overloaded = {
        "status": 503,
        "headers": {"Retry-After": "1"},
        "content_type": "application/json",
        "body": '{"error": "region_overloaded", "detail": "region eu-west is at capacity"}',
    }

    def first_overloaded(route: Any) -> None:
        request = route.request
        seen.append((request.url.rsplit("/", 1)[-1], request.headers.get("idempotency-key")))
        if sum(1 for path, _ in seen if path == seen[-1][0]) == 1 or "unkeyed" in request.url:
            route.fulfill(**overloaded)
        elif "keyed" in request.url:
            route.fulfill(status=201, content_type="application/json", body='{"id": "r-1"}')
        else:
            route.continue_()

    page.route("**/healthz", first_overloaded)
    page.route("**/retry-probe/*", first_overloaded)
    # The back-off waits on a fake clock, moved on until the calls are done.
    page.clock.install()
    page.evaluate(
        f"() => {{ window.retryCalls = ({RETRY_CALLS})().finally(() => (window.retryDone = true)); }}"
    )
    for _ in range(30):
        if page.evaluate("() => window.retryDone === true"):
            break
        page.clock.run_for(1000)
    result = page.evaluate("() => window.retryCalls")
    assert result["read"] == {"status": "ok"}
    assert result["keyed"] == {"id": "r-1"}
    assert result["unkeyed"] == [503, "region_overloaded"]
    assert seen == [
        ("healthz", None),
        ("healthz", None),
        ("keyed", "k-1"),
        ("keyed", "k-1"),
        ("unkeyed", None),
    ]
