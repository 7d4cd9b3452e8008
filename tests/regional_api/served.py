"""Fixtures of the tests that talk to a served regional app over HTTP (payments, box office,
on-sales): the app on a fresh database, and a show of the small seeded hall."""

from collections.abc import Iterator

import pytest

from harness.tokens import TestIssuer
from tests.regional_api.payments.seed import Live, Show, live_app, seed_cinema, seed_show


@pytest.fixture
def live(regional_dsn: str, issuer: TestIssuer) -> Iterator[Live]:
    """A served regional app with a fast simulated provider (its background jobs run too)."""
    with live_app(regional_dsn, issuer) as served:
        yield served


@pytest.fixture
def show(regional_dsn: str) -> Show:
    """A show tomorrow in a fresh cinema (6 sellable seats)."""
    return seed_show(regional_dsn, cinema_id=seed_cinema(regional_dsn))
