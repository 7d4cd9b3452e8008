"""A live regional app (eu-west) on a fresh database, and tokens for every role."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from harness.live import live_server
from harness.tokens import TestIssuer
from schemas.auth import Role
from tests.regional_api.served import regional_app

# Nothing listens on the discard port: a directory lookup fails fast with "connection refused".
DEAD_DIRECTORY = "http://127.0.0.1:9"


def make_app(
    dsn: str, issuer: TestIssuer, global_api_url: str = DEAD_DIRECTORY, **overrides: Any
) -> FastAPI:
    """The eu-west regional app on `dsn`, trusting the test issuer's keys (no JWKS fetch)."""
    return regional_app(dsn, issuer, global_api_url=global_api_url, db_pool_size=4, **overrides)


@pytest.fixture
def app(regional_dsn: str, issuer: TestIssuer) -> FastAPI:
    """The regional app under test."""
    return make_app(regional_dsn, issuer)


@pytest.fixture
def api(app: FastAPI) -> Iterator[httpx.Client]:
    """An HTTP client against the app served on a real loopback port."""
    with live_server(app) as url, httpx.Client(base_url=url, timeout=15) as client:
        yield client


@dataclass
class Auth:
    """Authorization headers for each kind of caller."""

    issuer: TestIssuer

    @property
    def admin(self) -> dict[str, str]:
        """A chain admin."""
        return self.issuer.headers(role=Role.admin)

    @property
    def customer(self) -> dict[str, str]:
        """A customer."""
        return self.issuer.headers(role=Role.customer)

    def staff(self, *cinemas: str) -> dict[str, str]:
        """Box-office staff of `cinemas`."""
        return self.issuer.headers(role=Role.staff, cinemas=cinemas)


@pytest.fixture
def auth(issuer: TestIssuer) -> Auth:
    """Headers for admin, customer and staff callers."""
    return Auth(issuer)
