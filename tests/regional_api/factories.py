"""Test data of regional databases, the one place for it: rows inserted with plain SQL.

Each factory takes the DSN of a regional database. Halls are built from a layout document with
the same parser the API uses, so seat labels and grid positions match. `seed_show` makes a show
of its own hall (and cinema and movie unless given); holds are placed the way the hold endpoint
places them (`place`, `hold`).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import make_engine, make_sessionmaker
from common.ids import new_id, region_of
from regional_api.halls.service import layout_document
from regional_api.reservations.holds import Terms, place_hold
from schemas.catalog import DEFAULT_LEGEND
from schemas.reservations import ReservationRead

T = TypeVar("T")

SMALL_HALL = ("AAAA_AAAA", "PPPP_PPPP", "VV_____WC")
PRICES = {"standard": 1000, "premium": 1500, "vip": 2500, "wheelchair": 800, "companion": 800}
# A show's default hall: row A standard (A5 blocked), row B vip: six sellable seats.
SMALL_ROWS = ("AAAAX", "VV")
GOOD_CARD = "4242424242424242"  # the simulated provider accepts it


def make_cinema(
    dsn: str,
    *,
    region: str = "eu-west",
    name: str | None = None,
    city: str = "Paris",
    timezone: str = "Europe/Paris",
) -> str:
    """Insert a mirrored cinema; return its id."""
    cinema_id = new_id("cin", region)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO cinemas (id, name, city, timezone) VALUES (%s, %s, %s, %s)",
            (cinema_id, name or f"Cinema {cinema_id[-4:]}", city, timezone),
        )
    return cinema_id


def make_hall(
    dsn: str,
    cinema_id: str,
    *,
    rows: tuple[str, ...] | list[str] = SMALL_HALL,
    legend: dict[str, str] | None = None,
    name: str | None = None,
) -> str:
    """Insert a hall and its seats from a layout document; return the hall id."""
    hall_id = new_id("hall", region_of(cinema_id) or "eu-west")
    name = name or f"Hall {hall_id[-4:]}"
    layout, document = layout_document(
        name=name, rows=list(rows), legend=legend or DEFAULT_LEGEND, row_labels=None
    )
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO halls (id, cinema_id, name, layout, seat_count)"
            " VALUES (%s, %s, %s, %s, %s)",
            (hall_id, cinema_id, name, Jsonb(document), len(layout.seats)),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO seats (hall_id, row_label, number, label, grid_row, grid_col,"
                " seat_type, blocked) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        hall_id,
                        s.row_label,
                        s.number,
                        s.label,
                        s.grid_row,
                        s.grid_col,
                        s.seat_type,
                        s.blocked,
                    )
                    for s in layout.seats
                ],
            )
    return hall_id


def make_movie(
    dsn: str,
    *,
    region: str = "eu-west",
    title: str = "The Test Movie",
    duration_minutes: int = 120,
    external_id: str | None = None,
) -> str:
    """Insert a movie; return its id."""
    movie_id = new_id("mov", region)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO movies (id, title, duration_minutes, external_id) VALUES (%s, %s, %s, %s)",
            (movie_id, title, duration_minutes, external_id),
        )
    return movie_id


def make_show(
    dsn: str,
    hall_id: str,
    movie_id: str,
    *,
    starts_at: datetime | None = None,
    prices: dict[str, int] | None = None,
    cleaning_minutes: int = 15,
    currency: str = "EUR",
) -> str:
    """Insert a scheduled show with prices and one show_seats row per seat; return its id."""
    show_id = new_id("show", region_of(hall_id) or "eu-west")
    starts_at = starts_at or datetime.now(UTC) + timedelta(days=1)
    prices = prices or PRICES
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        row = conn.execute(
            "SELECT h.cinema_id, m.duration_minutes FROM halls h, movies m"
            " WHERE h.id = %s AND m.id = %s",
            (hall_id, movie_id),
        ).fetchone()
        assert row is not None, "unknown hall or movie"
        ends_at = starts_at + timedelta(minutes=row[1] + cleaning_minutes)
        conn.execute(
            "INSERT INTO shows (id, movie_id, hall_id, cinema_id, starts_at, ends_at, currency)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (show_id, movie_id, hall_id, row[0], starts_at, ends_at, currency),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO show_prices (show_id, seat_type, amount_minor) VALUES (%s, %s, %s)",
                [(show_id, seat_type, amount) for seat_type, amount in prices.items()],
            )
        conn.execute(
            "INSERT INTO show_seats (show_id, seat_id, seat_type, price_minor, status)"
            " SELECT %(show)s, s.id, s.seat_type, coalesce(p.amount_minor, 0),"
            " CASE WHEN s.blocked THEN 'blocked' ELSE 'free' END FROM seats s"
            " LEFT JOIN show_prices p ON p.show_id = %(show)s AND p.seat_type = s.seat_type"
            " WHERE s.hall_id = %(hall)s AND s.retired_at IS NULL",
            {"show": show_id, "hall": hall_id},
        )
    return show_id


def seat_ids(dsn: str, hall_id: str) -> dict[str, int]:
    """The current seats of a hall: label -> seat id."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT label, id FROM seats WHERE hall_id = %s AND retired_at IS NULL", (hall_id,)
        ).fetchall()
    return dict(rows)


def grid_rows(rows: int = 8, cols: int = 12, aisle_after: int | None = 6) -> list[str]:
    """A `rows` x `cols` layout with an aisle: wheelchair A1, the last row vip, three premium."""
    letters = []
    for r in range(rows):
        row = ["V" if r == rows - 1 else "P" if r >= rows - 3 else "A" for _ in range(cols)]
        if r == 0 and r < rows - 1:
            row[0] = "W"
        if aisle_after is not None and aisle_after < cols:
            row.insert(aisle_after, "_")
        letters.append("".join(row))
    return letters


@dataclass
class ShowSeed:
    """What a test needs to know about a seeded show."""

    cinema_id: str
    hall_id: str
    movie_id: str
    show_id: str
    starts_at: datetime
    seats: dict[str, int] = field(default_factory=dict)  # label -> seat id

    def ids(self, *labels: str) -> list[int]:
        """Seat ids of the given labels."""
        return [self.seats[label] for label in labels]


def seed_show(
    dsn: str,
    *,
    rows: Sequence[str] = SMALL_ROWS,
    cinema_id: str | None = None,
    movie_id: str | None = None,
    starts_at: datetime | None = None,
    region: str = "eu-west",
) -> ShowSeed:
    """A show priced by `PRICES` in a hall of its own, of a new cinema and movie unless given.

    The hall is `SMALL_ROWS` unless `rows` says otherwise (`grid_rows` for a big one); the show
    starts tomorrow and ends two hours later (a new movie lasts 120 minutes).
    """
    cinema_id = cinema_id or make_cinema(dsn, region=region)
    hall_id = make_hall(dsn, cinema_id, rows=list(rows))
    movie_id = movie_id or make_movie(dsn, region=region)
    starts_at = starts_at or datetime.now(UTC) + timedelta(days=1)
    show_id = make_show(dsn, hall_id, movie_id, starts_at=starts_at, cleaning_minutes=0)
    return ShowSeed(cinema_id, hall_id, movie_id, show_id, starts_at, seat_ids(dsn, hall_id))


def seed_onsale(dsn: str, show_id: str, opens_at: datetime) -> None:
    """An on-sale of `show_id` with the waiting room's defaults, written straight to the table."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO onsales (show_id, opens_at, created_at) VALUES (%s, %s, now())",
            (show_id, opens_at),
        )


def place(
    dsn: str,
    *,
    show_id: str,
    seat_ids: Sequence[int],
    user_id: str,
    now: datetime,
    ttl: timedelta,
    cap: int | None = None,
) -> ReservationRead:
    """Hold seats as `POST /shows/{id}/holds` does: `place_hold` on an autocommit connection."""
    terms = Terms(user_id=user_id, channel="online", now=now, ttl=ttl, cap=cap)

    async def main() -> ReservationRead:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await place_hold(conn, show_id, terms, seat_ids)

    return asyncio.run(main())


def hold(
    dsn: str, show: ShowSeed, labels: list[str], *, user_id: str, now: datetime, minutes: int = 10
) -> str:
    """Hold seats of `show` by label the way the hold endpoint does; returns the reservation id."""
    ttl = timedelta(minutes=minutes)
    placed = place(
        dsn, show_id=show.show_id, seat_ids=show.ids(*labels), user_id=user_id, now=now, ttl=ttl
    )
    return placed.id


def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a read-only query."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


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
