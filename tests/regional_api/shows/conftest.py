"""Serving the regional app for the show-read tests, and reading its show-cache metrics."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from harness.live import live_server
from harness.tokens import TestIssuer
from schemas.auth import Role
from tests.regional_api.catalog.conftest import make_app
from tests.regional_api.factories import ShowSeed, seed_show

MINUTE_MS = 60_000.0


@dataclass
class Served:
    """An app served on loopback, its client and the customer it books for."""

    app: FastAPI
    client: httpx.Client
    customer: dict[str, str]

    def seats(self, show: ShowSeed, **headers: str) -> httpx.Response:
        """GET the show's seat map."""
        return self.client.get(f"/shows/{show.show_id}/seats", headers=headers)

    def status(self, show: ShowSeed, label: str) -> str:
        """The status of one seat in the seat map served now."""
        seats = self.seats(show).json()["seats"]
        return str(next(s["status"] for s in seats if s["label"] == label))

    def hold(self, show: ShowSeed, *labels: str) -> httpx.Response:
        """Hold seats as the customer."""
        body = {"seat_ids": show.ids(*labels)}
        return self.client.post(f"/shows/{show.show_id}/holds", json=body, headers=self.customer)


@contextmanager
def serve(dsn: str, issuer: TestIssuer, **settings: Any) -> Iterator[Served]:
    """Serve the eu-west app on `dsn` with `settings` (instant simulated payments)."""
    app = make_app(dsn, issuer, payment_provider_latency_ms=0, **settings)
    customer = issuer.headers(sub="user-cache-test", role=Role.customer)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=15) as client:
        yield Served(app, client, customer)


@pytest.fixture
def show(regional_dsn: str) -> ShowSeed:
    """A show tomorrow in a fresh cinema (A1-A4 and B1-B2 sellable)."""
    return seed_show(regional_dsn)


def metric(name: str, kind: str | None = None) -> float:
    """A show-cache counter of this process (by kind, when it has one)."""
    return REGISTRY.get_sample_value(name, {"kind": kind} if kind else {}) or 0.0
