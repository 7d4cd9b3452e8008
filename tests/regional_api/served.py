"""A regional app served on loopback over HTTP (payments, box office, on-sales, tickets), and
its fixtures: the app on a fresh database, and a show of the small hall."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from harness.live import live_server
from harness.tokens import TestIssuer
from regional_api.config import RegionalSettings
from regional_api.main import create_app
from regional_api.payments.provider import SimulatedProvider
from tests.regional_api.factories import ShowSeed, seed_show


@dataclass
class Live:
    """A regional app served on loopback, its client, clock and simulated provider."""

    app: FastAPI
    client: httpx.Client
    provider: SimulatedProvider
    dsn: str
    issuer: TestIssuer

    def now(self) -> datetime:
        """The app clock's current time."""
        clock = self.app.state.clock
        result: datetime = clock.now()
        return result

    def advance(self, delta: timedelta) -> None:
        """Move the app clock forward."""
        self.app.state.clock.advance(delta)


def fast_provider() -> SimulatedProvider:
    """A simulated provider that answers at once and gives up on a silent charge quickly."""
    return SimulatedProvider(timeout_seconds=0.2)


def regional_app(dsn: str, issuer: TestIssuer, **settings: Any) -> FastAPI:
    """The eu-west regional app on `dsn`, trusting the test issuer's keys (no JWKS fetch).

    `settings` replace the defaults unvalidated, so a test may set what the API would refuse.
    """
    defaults = RegionalSettings(region="eu-west", database_url=dsn)
    return create_app(defaults.model_copy(update=settings), jwks=issuer.jwks)


@contextmanager
def live_app(dsn: str, issuer: TestIssuer) -> Iterator[Live]:
    """Serve a regional app on `dsn` with a fast-timing simulated provider."""
    app = regional_app(dsn, issuer, global_api_url="http://127.0.0.1:9")
    provider = fast_provider()
    app.state.payment_provider = provider
    with live_server(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield Live(app, client, provider, dsn, issuer)


@pytest.fixture
def live(regional_dsn: str, issuer: TestIssuer) -> Iterator[Live]:
    """A served regional app with a fast simulated provider (its background jobs run too)."""
    with live_app(regional_dsn, issuer) as served:
        yield served


@pytest.fixture
def show(regional_dsn: str) -> ShowSeed:
    """A show tomorrow in a fresh cinema (6 sellable seats)."""
    return seed_show(regional_dsn)
