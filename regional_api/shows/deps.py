"""Show dependencies: listing filters and pagination, validated once."""

from dataclasses import replace
from datetime import date
from typing import Annotated

from fastapi import Depends, Query

from common.errors import Unprocessable
from regional_api.cinemas.service import require_local_id
from regional_api.config import SettingsDep
from regional_api.shows.queries import ShowFilters
from schemas.catalog import NO_NUL_PATTERN
from schemas.pagination import MAX_PAGE_SIZE

IdQuery = Annotated[str | None, Query(max_length=64)]
TextQuery = Annotated[str | None, Query(max_length=200, pattern=NO_NUL_PATTERN)]


async def cinema_show_filters(
    settings: SettingsDep,
    movie_id: IdQuery = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=NO_NUL_PATTERN, description="movie title contains"),
    ] = None,
    city: TextQuery = None,
    date_from: Annotated[date | None, Query(description="first day, cinema-local")] = None,
    date_to: Annotated[date | None, Query(description="last day, cinema-local")] = None,
    include_canceled: bool = False,
) -> ShowFilters:
    """The listing filters of the query string (the cinema comes from the path)."""
    if movie_id:
        require_local_id(movie_id, kind="mov", region=settings.region, status=422)
    if date_from and date_to and date_from > date_to:
        raise Unprocessable("date_from is after date_to", code="invalid_date_range")
    return ShowFilters(
        movie_id=movie_id,
        q=q,
        city=city,
        date_from=date_from,
        date_to=date_to,
        include_canceled=include_canceled,
    )


CinemaFiltersDep = Annotated[ShowFilters, Depends(cinema_show_filters)]


async def show_filters(
    filters: CinemaFiltersDep, settings: SettingsDep, cinema_id: IdQuery = None
) -> ShowFilters:
    """The listing filters of the query string, including the cinema."""
    if cinema_id:
        require_local_id(cinema_id, kind="cin", region=settings.region, status=422)
    return replace(filters, cinema_id=cinema_id)


FiltersDep = Annotated[ShowFilters, Depends(show_filters)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
