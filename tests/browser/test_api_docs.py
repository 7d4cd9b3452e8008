"""Swagger UI and ReDoc render with no Internet: their assets come from the fastapi-offline package."""

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Route, expect

from tests.browser.conftest import DESKTOP, Stack

pytestmark = pytest.mark.browser


def _loopback_only(route: Route) -> None:
    """Refuse every request that would leave the machine (a CDN), like an offline laptop."""
    host = route.request.url.split("/")[2].split(":")[0]
    if host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort("internetdisconnected")


def test_docs_render_offline_in_every_service(stack: Stack, new_page: Any) -> None:
    """Each service's /docs and /redoc (the router's under /router/) render from local assets."""
    pages = {"router": (f"{stack.url}/router/docs", f"{stack.url}/router/redoc")}
    for name, base in stack.services.items():
        if name in ("global_api", "eu-west-1", "us-east-1"):
            pages[name] = (f"{base}/docs", f"{base}/redoc")
    page = new_page(DESKTOP)
    page.route("**/*", _loopback_only)
    leaks: list[str] = []
    page.on("requestfailed", lambda request: leaks.append(request.url))
    for name, (swagger, redoc) in pages.items():
        html = httpx.get(swagger, timeout=30).text
        assert "cdn." not in html, name
        page.goto(swagger)
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
        expect(page.locator(".swagger-ui .title")).to_contain_text("Cinema")
        page.goto(redoc)
        expect(page.get_by_role("heading", name=re.compile("^Cinema")).first).to_be_visible()
    # ReDoc's bundle links its "API docs by Redocly" footer logo to its CDN: only that image
    # is missing offline, the documentation itself is complete.
    assert [url for url in leaks if not url.endswith("cdn.redoc.ly/redoc/logo-mini.svg")] == []
    assert not page.js_errors
