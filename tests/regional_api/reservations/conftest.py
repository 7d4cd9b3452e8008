"""A live regional app on a fresh database with one seeded show."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from harness.live import live_server
from harness.tokens import TestIssuer
from tests.regional_api.factories import ShowSeed, grid_rows, seed_show
from tests.regional_api.served import regional_app

# What every reservations test starts from: short, test-friendly hold rules.
HOLD_RULES: dict[str, Any] = {
    "hold_ttl_seconds": 600,
    "hold_extension_seconds": 300,
    "hold_max_extensions": 2,
    "hold_cap_seconds": 1200,
    "max_seats_per_customer_show": 6,
    "cancel_cutoff_minutes": 60,
    "sweeper_interval_seconds": 3600,
    "db_pool_size": 20,
    "log_level": "WARNING",
}


def make_app(regional_dsn: str, issuer: TestIssuer, **overrides: Any) -> FastAPI:
    """A regional app on `regional_dsn` with short, test-friendly hold settings."""
    return regional_app(regional_dsn, issuer, **(HOLD_RULES | overrides))


@pytest.fixture
def app(regional_dsn: str, issuer: TestIssuer) -> FastAPI:
    return make_app(regional_dsn, issuer)


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    with live_server(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture
def show(regional_dsn: str) -> ShowSeed:
    return seed_show(regional_dsn, rows=grid_rows())
