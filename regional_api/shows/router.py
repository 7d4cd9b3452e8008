"""Endpoints of shows: schedule one, list them, read one, and its seat availability."""

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status

from common.db import session_connection
from regional_api.cinemas.deps import CinemaDep
from regional_api.clock import ClockDep
from regional_api.config import SettingsDep
from regional_api.db import SessionDep
from regional_api.halls.deps import ManagedHall
from regional_api.shows import queries, service
from regional_api.shows.deps import CinemaFiltersDep, FiltersDep, Limit, Offset
from regional_api.shows.reads import ShowReadsDep
from schemas.catalog import ShowCreate, ShowRead, ShowSeatMap
from schemas.pagination import Page

router = APIRouter(tags=["shows"])


@router.post("/halls/{hall_id}/shows", status_code=status.HTTP_201_CREATED)
async def create_show(
    body: ShowCreate, hall: ManagedHall, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> ShowRead:
    """Schedule a movie in a hall (admin or the cinema's staff); 409 `show_overlap` on a clash."""
    movie = await service.movie_for_show(session, movie_id=body.movie_id, region=settings.region)
    show = await service.create_show(
        session,
        hall=hall,
        movie=movie,
        starts_at=body.starts_at,
        prices={seat_type.value: amount for seat_type, amount in body.prices.items()},
        currency=settings.currency,
        cleaning_minutes=settings.cleaning_minutes,
        region=settings.region,
        now=clock.now(),
    )
    conn = await session_connection(session)  # the new show is not committed yet
    return ShowRead.model_validate(await queries.read_show(conn, show_id=show.id, now=clock.now()))


async def _page(
    session: SessionDep, filters: queries.ShowFilters, clock: ClockDep, limit: int, offset: int
) -> Page[ShowRead]:
    items, total = await queries.list_shows(
        session, filters=filters, now=clock.now(), limit=limit, offset=offset
    )
    shows = [ShowRead.model_validate(item) for item in items]
    return Page(items=shows, total=total, limit=limit, offset=offset)


@router.get("/shows")
async def list_shows(
    filters: FiltersDep, session: SessionDep, clock: ClockDep, limit: Limit = 50, offset: Offset = 0
) -> Page[ShowRead]:
    """List this region's shows by start time, with free seat counts."""
    return await _page(session, filters, clock, limit, offset)


@router.get("/cinemas/{cinema_id}/shows")
async def list_cinema_shows(
    cinema: CinemaDep,
    filters: CinemaFiltersDep,
    session: SessionDep,
    clock: ClockDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ShowRead]:
    """List a cinema's shows by start time, with free seat counts."""
    return await _page(session, replace(filters, cinema_id=cinema.id), clock, limit, offset)


IfNoneMatch = Annotated[str | None, Header(max_length=1024)]
_CONDITIONAL: dict[int | str, dict[str, Any]] = {
    304: {"description": "unchanged since the ETag given in If-None-Match"}
}


@router.get("/shows/{show_id}", response_model=ShowRead, responses=_CONDITIONAL)
async def get_show(
    show_id: str, reads: ShowReadsDep, if_none_match: IfNoneMatch = None
) -> Response:
    """Read a show: movie, hall, cinema, UTC and local start, prices, free seats; ETag/304."""
    return reads.answer("show", await reads.show(show_id), if_none_match)


@router.get("/shows/{show_id}/seats", response_model=ShowSeatMap, responses=_CONDITIONAL)
async def get_show_seats(
    show_id: str, reads: ShowReadsDep, if_none_match: IfNoneMatch = None
) -> Response:
    """Every seat of a show with type, price and status (a lapsed hold shows as free); ETag/304."""
    return reads.answer("seats", await reads.seats(show_id), if_none_match)
