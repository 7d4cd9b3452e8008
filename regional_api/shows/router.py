"""Endpoints of shows: schedule one, list them, read one, and its seat availability."""

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from common.errors import NotFound
from common.etag import etag_matches, etag_of
from regional_api.cinemas.deps import CinemaDep
from regional_api.cinemas.service import require_local_id
from regional_api.clock import ClockDep
from regional_api.config import SettingsDep
from regional_api.db import SessionDep
from regional_api.halls.deps import ManagedHall
from regional_api.shows import queries, service
from regional_api.shows.deps import CinemaFiltersDep, FiltersDep, Limit, Offset
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
    return ShowRead.model_validate(
        await queries.read_show(session, show_id=show.id, now=clock.now())
    )


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


@router.get("/shows/{show_id}")
async def get_show(
    show_id: str, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> ShowRead:
    """Read a show: movie, hall, cinema, UTC and local start, prices, free seats."""
    require_local_id(show_id, kind="show", region=settings.region)
    item = await queries.read_show(session, show_id=show_id, now=clock.now())
    if item is None:
        raise NotFound(f"no show {show_id}", code="show_not_found")
    return ShowRead.model_validate(item)


@router.get(
    "/shows/{show_id}/seats",
    response_model=ShowSeatMap,
    responses={304: {"description": "unchanged since the ETag given in If-None-Match"}},
)
async def get_show_seats(
    show_id: str,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """Every seat of a show with type, price and status (a lapsed hold shows as free); ETag/304."""
    require_local_id(show_id, kind="show", region=settings.region)
    document = await queries.seat_map_json(session, show_id=show_id, now=clock.now())
    if document is None:
        raise NotFound(f"no show {show_id}", code="show_not_found")
    # Hashed from the document itself: a poll that finds nothing new gets 304 and no body.
    headers = {"ETag": etag_of(document), "Cache-Control": "no-cache"}
    if etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(document, media_type="application/json", headers=headers)
