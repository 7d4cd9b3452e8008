"""A live global_api per test, on its own migrated database, with cheap Argon2 settings."""

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from global_api.config import GlobalSettings
from global_api.main import create_app
from harness.live import live_server
from tests.global_api.support import ADMIN_EMAIL, ADMIN_PASSWORD, GlobalClient


@pytest.fixture
def settings(global_dsn: str) -> GlobalSettings:
    """Test settings: tiny hashing cost, a low throttling threshold, a bootstrap admin."""
    return GlobalSettings(
        database_url=global_dsn,
        argon2_time_cost=1,
        argon2_memory_cost=8,
        argon2_parallelism=1,
        login_failure_threshold=3,
        login_failure_window_seconds=60,
        bootstrap_admin_email=ADMIN_EMAIL,
        bootstrap_admin_password=ADMIN_PASSWORD,
        db_pool_size=5,
        db_max_overflow=20,
        log_level="WARNING",
    )


@pytest.fixture
def app(settings: GlobalSettings) -> FastAPI:
    """The global API under test."""
    return create_app(settings)


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The live server's base URL."""
    with live_server(app) as url:
        yield url


@pytest.fixture
def api(base_url: str) -> Iterator[GlobalClient]:
    """An HTTP client with helpers for the global API."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        yield GlobalClient(client)
