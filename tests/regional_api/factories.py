"""Catalog data factories for regional tests: plain functions inserting rows with SQL.

Each takes the DSN of a regional database and returns the new id. Halls are built from a
layout document with the same parser the API uses, so seat labels and grid positions match.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from common.ids import new_id, region_of
from regional_api.halls.service import layout_document
from schemas.catalog import DEFAULT_LEGEND

SMALL_HALL = ("AAAA_AAAA", "PPPP_PPPP", "VV_____WC")
PRICES = {"standard": 1000, "premium": 1500, "vip": 2200, "wheelchair": 1000, "companion": 1000}


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


@dataclass
class Catalog:
    """A cinema with one hall, one movie and one show, and the hall's seats by label."""

    cinema_id: str
    hall_id: str
    movie_id: str
    show_id: str
    seats: dict[str, int] = field(default_factory=dict)


def make_catalog(
    dsn: str,
    *,
    region: str = "eu-west",
    rows: tuple[str, ...] | list[str] = SMALL_HALL,
    starts_at: datetime | None = None,
) -> Catalog:
    """Insert a cinema, a hall, a movie and a show tomorrow; return all their ids."""
    cinema_id = make_cinema(dsn, region=region)
    hall_id = make_hall(dsn, cinema_id, rows=rows)
    movie_id = make_movie(dsn, region=region)
    show_id = make_show(dsn, hall_id, movie_id, starts_at=starts_at)
    return Catalog(cinema_id, hall_id, movie_id, show_id, seat_ids(dsn, hall_id))
