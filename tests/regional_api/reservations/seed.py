"""Catalog rows for reservation tests, inserted with plain SQL (cinema, hall, seats, show).

Holds are placed the way the hold endpoint places them (`place`).
"""

import asyncio
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from common.ids import new_id
from regional_api.reservations.holds import Terms, place_hold
from schemas.reservations import ReservationRead

PRICES = {"standard": 1000, "premium": 1500, "vip": 2200, "wheelchair": 1000, "companion": 1000}


@dataclass
class ShowSeed:
    """What a test needs to know about a seeded show."""

    cinema_id: str
    hall_id: str
    show_id: str
    movie_id: str
    seats: dict[str, int] = field(default_factory=dict)  # label -> seat id

    def ids(self, *labels: str) -> list[int]:
        """Seat ids of the given labels."""
        return [self.seats[label] for label in labels]


def _seat_type(row: int, rows: int, col: int) -> str:
    if row == rows - 1:
        return "vip"
    if row == 0 and col == 0:
        return "wheelchair"
    return "premium" if row >= rows - 3 else "standard"


def seed_cinema(conn: psycopg.Connection, region: str = "eu-west") -> str:
    """Insert a cinema and return its id."""
    cinema_id = new_id("cin", region)
    conn.execute(
        "INSERT INTO cinemas (id, name, city, timezone) VALUES (%s, %s, 'Paris', 'Europe/Paris')",
        (cinema_id, f"Cinema {cinema_id[-4:]}"),
    )
    return cinema_id


def seed_show(
    dsn: str,
    *,
    region: str = "eu-west",
    rows: int = 8,
    cols: int = 12,
    aisle_after: int | None = 6,
    starts_in: timedelta = timedelta(days=1),
    cinema_id: str | None = None,
) -> ShowSeed:
    """Insert a cinema (unless given), a hall `rows` x `cols` with an aisle, a movie and a show."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cinema_id = cinema_id or seed_cinema(conn, region)
        hall_id, movie_id, show_id = (new_id(k, region) for k in ("hall", "mov", "show"))
        conn.execute(
            "INSERT INTO halls (id, cinema_id, name, layout, seat_count) VALUES (%s, %s, %s, '{}', %s)",
            (hall_id, cinema_id, f"Hall {hall_id[-4:]}", rows * cols),
        )
        seats = []
        for r in range(rows):
            row_label = string.ascii_uppercase[r % 26] * (1 + r // 26)
            for c in range(cols):
                grid_col = c + 1 if aisle_after is not None and c >= aisle_after else c
                seats.append(
                    (
                        hall_id,
                        row_label,
                        c + 1,
                        f"{row_label}{c + 1}",
                        r,
                        grid_col,
                        _seat_type(r, rows, c),
                    )
                )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO seats (hall_id, row_label, number, label, grid_row, grid_col, seat_type)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                seats,
            )
        conn.execute(
            "INSERT INTO movies (id, title, duration_minutes) VALUES (%s, 'The Test Movie', 120)",
            (movie_id,),
        )
        starts = datetime.now(UTC) + starts_in
        conn.execute(
            "INSERT INTO shows (id, movie_id, hall_id, cinema_id, starts_at, ends_at, currency)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'EUR')",
            (show_id, movie_id, hall_id, cinema_id, starts, starts + timedelta(hours=2)),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO show_prices (show_id, seat_type, amount_minor) VALUES (%s, %s, %s)",
                [(show_id, t, p) for t, p in PRICES.items()],
            )
        conn.execute(
            "INSERT INTO show_seats (show_id, seat_id, seat_type, price_minor)"
            " SELECT %s, s.id, s.seat_type, p.amount_minor FROM seats s"
            " JOIN show_prices p ON p.show_id = %s AND p.seat_type = s.seat_type"
            " WHERE s.hall_id = %s",
            (show_id, show_id, hall_id),
        )
        labels = conn.execute("SELECT label, id FROM seats WHERE hall_id = %s", (hall_id,))
        return ShowSeed(cinema_id, hall_id, show_id, movie_id, dict(labels.fetchall()))


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
