"""Scheduling shows: prices, the per-show seat rows, and the no-overlap rule of a hall."""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from prometheus_client import Counter
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch, fetch_one, run, session_connection
from common.errors import NotFound, Unprocessable
from common.ids import new_id
from regional_api.cinemas.service import require_local_id
from regional_api.db import save
from regional_api.halls.models import Hall
from regional_api.movies.models import Movie
from regional_api.shows.models import Show, ShowPrice

log = logging.getLogger("catalog.shows")

SHOWS_CREATED = Counter("catalog_shows_created_total", "Shows scheduled")
SHOW_OVERLAPS = Counter(
    "catalog_show_overlaps_refused_total", "Shows refused because they overlap another in a hall"
)

# Show creations in one hall take turns (and wait for a layout change, which locks the hall
# FOR UPDATE): two concurrent overlapping inserts can otherwise each wait on the other's
# exclusion-index entry and die with a deadlock instead of one clean exclusion violation.
_LOCK_HALL = "SELECT 1 FROM halls WHERE id = %(hall_id)s FOR NO KEY UPDATE"
_SELLABLE_TYPES = (
    "SELECT DISTINCT seat_type FROM seats"
    " WHERE hall_id = %(hall_id)s AND retired_at IS NULL AND NOT blocked ORDER BY seat_type"
)

# One statement snapshots every current seat of the hall with its type's price at this show.
_INSERT_SHOW_SEATS = """
    INSERT INTO show_seats (show_id, seat_id, seat_type, price_minor, status)
    SELECT %(show_id)s, s.id, s.seat_type, coalesce(p.amount_minor, 0),
           CASE WHEN s.blocked THEN 'blocked' ELSE 'free' END
    FROM seats s
    LEFT JOIN show_prices p ON p.show_id = %(show_id)s AND p.seat_type = s.seat_type
    WHERE s.hall_id = %(hall_id)s AND s.retired_at IS NULL
"""

_FIND_OVERLAP = """
    SELECT id, starts_at, ends_at FROM shows
    WHERE hall_id = %(hall_id)s AND status = 'scheduled'
      AND tstzrange(starts_at, ends_at) && tstzrange(%(starts_at)s, %(ends_at)s)
    ORDER BY starts_at LIMIT 1
"""


async def movie_for_show(session: AsyncSession, *, movie_id: str, region: str) -> Movie:
    """The movie a new show is for; an unknown id in the body is 422 `unknown_movie`."""
    require_local_id(movie_id, kind="mov", region=region, status=422)
    movie = await session.get(Movie, movie_id)
    if movie is None:
        raise Unprocessable(f"no movie {movie_id}", code="unknown_movie", movie_id=movie_id)
    return movie


async def _sellable_types(session: AsyncSession, hall_id: str) -> list[str]:
    conn = await session_connection(session)
    if await fetch_one(conn, _LOCK_HALL, {"hall_id": hall_id}) is None:
        raise NotFound(f"no hall {hall_id}", code="hall_not_found")
    return [row.seat_type for row in await fetch(conn, _SELLABLE_TYPES, {"hall_id": hall_id})]


def _check_prices(sellable: list[str], prices: Mapping[str, int]) -> None:
    missing = [seat_type for seat_type in sellable if seat_type not in prices]
    if missing:
        raise Unprocessable(
            f"prices missing for seat types of this hall: {', '.join(missing)}",
            code="missing_prices",
            missing=missing,
        )


async def _overlap_fields(session: AsyncSession, show: Show) -> dict[str, Any]:
    """Name the show that made the exclusion constraint refuse `show` (`show_overlap`)."""
    # The savepoint is gone and a new statement sees the committed rival show.
    params = {"hall_id": show.hall_id, "starts_at": show.starts_at, "ends_at": show.ends_at}
    row = await fetch_one(await session_connection(session), _FIND_OVERLAP, params)
    SHOW_OVERLAPS.inc()
    extra = {}
    if row is not None:
        extra = {
            "conflicting_show_id": row.id,
            "conflicting_starts_at": row.starts_at.isoformat(),
            "conflicting_ends_at": row.ends_at.isoformat(),
        }
    log.info("show overlap refused", extra={"fields": {"hall_id": show.hall_id, **extra}})
    return extra


async def create_show(
    session: AsyncSession,
    *,
    hall: Hall,
    movie: Movie,
    starts_at: datetime,
    prices: Mapping[str, int],
    currency: str,
    cleaning_minutes: int,
    region: str,
    now: datetime,
) -> Show:
    """Schedule a movie in a hall with a price per seat type; 409 `show_overlap` on a clash."""
    starts_at = starts_at.astimezone(UTC)
    if starts_at <= now:
        raise Unprocessable("a show must start in the future", code="show_in_past")
    _check_prices(await _sellable_types(session, hall.id), prices)
    show = Show(
        id=new_id("show", region),
        movie_id=movie.id,
        hall_id=hall.id,
        cinema_id=hall.cinema_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=movie.duration_minutes + cleaning_minutes),
        status="scheduled",
        currency=currency,
    )
    await save(
        session, show, {}, code="show_overlap", extra=partial(_overlap_fields, session, show)
    )
    await session.execute(
        insert(ShowPrice),
        [
            {"show_id": show.id, "seat_type": seat_type, "amount_minor": amount}
            for seat_type, amount in prices.items()
        ],
    )
    params = {"show_id": show.id, "hall_id": hall.id}
    await run(await session_connection(session), _INSERT_SHOW_SEATS, params)
    SHOWS_CREATED.inc()
    log.info("show created", extra={"fields": {"show_id": show.id, "hall_id": hall.id}})
    return show
