"""Catalog rows for payment, box-office and report tests (plain SQL), plus a live app harness."""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import psycopg
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import make_engine, make_sessionmaker
from common.ids import new_id
from harness.live import live_server
from harness.tokens import TestIssuer
from regional_api.config import RegionalSettings
from regional_api.main import create_app
from regional_api.payments.provider import SimulatedProvider
from tests.regional_api.reservations.seed import place

T = TypeVar("T")

PRICES = {"standard": 1000, "vip": 2500, "wheelchair": 800}
# A small hall: row A standard (A5 blocked), row B vip.
LAYOUT = {
    "A1": "standard",
    "A2": "standard",
    "A3": "standard",
    "A4": "standard",
    "A5": "standard",
    "B1": "vip",
    "B2": "vip",
}
BLOCKED = ("A5",)
GOOD_CARD = "4242424242424242"


@dataclass
class Show:
    """A seeded show and the ids of its seats by label."""

    cinema_id: str
    movie_id: str
    show_id: str
    starts_at: datetime
    seats: dict[str, int] = field(default_factory=dict)

    def ids(self, *labels: str) -> list[int]:
        """Seat ids of the given labels."""
        return [self.seats[label] for label in labels]


def seed_cinema(dsn: str, *, timezone: str = "Europe/Paris") -> str:
    """Insert a cinema of eu-west and return its id."""
    cinema_id = new_id("cin", "eu-west")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO cinemas (id, name, city, timezone) VALUES (%s, %s, 'Paris', %s)",
            (cinema_id, f"Cinema {cinema_id[-4:]}", timezone),
        )
    return cinema_id


def seed_movie(dsn: str, title: str = "The Test Movie") -> str:
    """Insert a movie and return its id."""
    movie_id = new_id("mov", "eu-west")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO movies (id, title, duration_minutes) VALUES (%s, %s, 100)",
            (movie_id, title),
        )
    return movie_id


def _grid(label: str) -> tuple[int, int]:
    return ord(label[0]) - ord("A"), int(label[1:])


def seed_show(
    dsn: str,
    *,
    cinema_id: str,
    movie_id: str | None = None,
    starts_at: datetime | None = None,
) -> Show:
    """Insert a hall of `LAYOUT` (with `BLOCKED` seats) and a show of it priced by `PRICES`."""
    movie_id = movie_id or seed_movie(dsn)
    starts_at = starts_at or datetime.now(UTC) + timedelta(days=1)
    hall_id, show_id = new_id("hall", "eu-west"), new_id("show", "eu-west")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO halls (id, cinema_id, name, layout, seat_count)"
            " VALUES (%s, %s, %s, '{}', %s)",
            (hall_id, cinema_id, f"Hall {hall_id[-4:]}", len(LAYOUT)),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO seats (hall_id, row_label, number, label, grid_row, grid_col,"
                " seat_type, blocked) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (hall_id, label[0], int(label[1:]), label, *_grid(label), seat_type, blocked)
                    for label, seat_type in LAYOUT.items()
                    for blocked in [label in BLOCKED]
                ],
            )
        conn.execute(
            "INSERT INTO shows (id, movie_id, hall_id, cinema_id, starts_at, ends_at, currency)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'EUR')",
            (show_id, movie_id, hall_id, cinema_id, starts_at, starts_at + timedelta(hours=2)),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO show_prices (show_id, seat_type, amount_minor) VALUES (%s, %s, %s)",
                [(show_id, seat_type, price) for seat_type, price in PRICES.items()],
            )
        conn.execute(
            "INSERT INTO show_seats (show_id, seat_id, seat_type, price_minor, status)"
            " SELECT %s, s.id, s.seat_type, p.amount_minor,"
            " CASE WHEN s.blocked THEN 'blocked' ELSE 'free' END FROM seats s"
            " JOIN show_prices p ON p.show_id = %s AND p.seat_type = s.seat_type"
            " WHERE s.hall_id = %s",
            (show_id, show_id, hall_id),
        )
        seats = conn.execute("SELECT label, id FROM seats WHERE hall_id = %s", (hall_id,))
        return Show(cinema_id, movie_id, show_id, starts_at, dict(seats.fetchall()))


def run_db(dsn: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction of its own."""

    async def main() -> T:
        engine = make_engine(dsn, service="test", pool_size=1, max_overflow=0)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def hold(
    dsn: str, show: Show, labels: list[str], *, user_id: str, now: datetime, minutes: int = 10
) -> str:
    """Hold seats the way the hold endpoint does; returns the reservation id."""
    placed = place(
        dsn,
        show_id=show.show_id,
        seat_ids=show.ids(*labels),
        user_id=user_id,
        now=now,
        ttl=timedelta(minutes=minutes),
    )
    return placed.id


def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a read-only query."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


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


@contextmanager
def live_app(dsn: str, issuer: TestIssuer) -> Iterator[Live]:
    """Serve a regional app on `dsn` with a fast-timing simulated provider."""
    settings = RegionalSettings(
        region="eu-west", database_url=dsn, global_api_url="http://127.0.0.1:9"
    )
    app = create_app(settings, jwks=issuer.jwks)
    provider = fast_provider()
    app.state.payment_provider = provider
    with live_server(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield Live(app, client, provider, dsn, issuer)
