"""The whole system as real processes: one stack for the e2e session, on free ports."""

from collections.abc import Iterator

import httpx
import pytest

from deploy.local.stack import LocalStack
from tests.support.stack import running_stack


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    """Every process of the system with the small demo, stopped after this package."""
    with running_stack("e2e") as running:
        yield running


@pytest.fixture
def router(stack: LocalStack) -> Iterator[httpx.Client]:
    """An HTTP client for the public entry point."""
    with httpx.Client(base_url=stack.router_url, timeout=10.0) as client:
        yield client


def login(client: httpx.Client, who: dict[str, str]) -> dict[str, str]:
    """Log in through `client`; return an Authorization header."""
    response = client.post("/auth/login", json={"email": who["email"], "password": who["password"]})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
