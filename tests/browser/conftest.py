"""The whole local stack on free ports plus headless Chromium driven by Playwright.

Set `BROWSER_STACK_URL` (a router base URL serving `/app/`) and `BROWSER_STACK_CREDENTIALS`
(the stack's demo-credentials.json) to run the tests against a stack that is already up, and
optionally `BROWSER_STACK_SERVICES` (JSON: process name -> base URL) for the API docs test.
"""

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright  # noqa: E402

PHONE: ViewportSize = {"width": 375, "height": 812}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@dataclass(frozen=True)
class Stack:
    """A running system: the router's URL and the demo accounts."""

    url: str
    credentials: dict[str, dict[str, str]]
    services: dict[str, str] = field(default_factory=dict)  # process name -> its own base URL

    def token(self, role: str) -> str:
        """An access token of a demo account, for arranging data through the API."""
        who = self.credentials[role]
        answer = httpx.post(
            f"{self.url}/auth/login",
            json={"email": who["email"], "password": who["password"]},
            timeout=30,
        )
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token

    def get(self, path: str, token: str | None = None) -> Any:
        """GET a JSON document through the router."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = httpx.get(f"{self.url}{path}", headers=headers, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: dict[str, Any], token: str) -> Any:
        """POST a JSON document through the router; the answer must be 2xx."""
        headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)
        assert answer.is_success, answer.text
        return answer.json()


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """The whole system with the small demo data set, on free ports, stopped afterwards."""
    external = os.environ.get("BROWSER_STACK_URL")
    if external:
        credentials = json.loads(Path(os.environ["BROWSER_STACK_CREDENTIALS"]).read_text())
        services = json.loads(os.environ.get("BROWSER_STACK_SERVICES", "{}"))
        yield Stack(external.rstrip("/"), credentials, services)
        return
    from tests.support.stack import running_stack

    with running_stack("browser", log_level="WARNING") as local:
        services = {name: proc.url for name, proc in local.processes.items()}
        yield Stack(local.router_url, local.credentials, services)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (never a downloaded browser build)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Any]:
    """Open pages in fresh browser contexts (separate sessionStorage), all closed afterwards."""
    contexts = []

    def open_page(viewport: ViewportSize | None = None, *, touch: bool = False) -> Page:
        context = browser.new_context(
            viewport=viewport or DESKTOP, has_touch=touch, is_mobile=touch
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    yield open_page
    for context in contexts:
        context.close()


class Shots:
    """Numbered screenshots of one test under test-artifacts/."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        ARTIFACTS.mkdir(exist_ok=True)

    def take(self, page: Page, step: str, *, full_page: bool = True) -> Path:
        """Save a PNG of the page for this step."""
        self.count += 1
        path = ARTIFACTS / f"{self.name}-{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    """Screenshots named after the test."""
    return Shots(request.node.name.removeprefix("test_"))
