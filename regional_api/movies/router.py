"""Endpoints of the region's movie catalog."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from common.auth import AdminClaims
from regional_api.config import SettingsDep
from regional_api.db import SessionDep
from regional_api.movies import service
from regional_api.movies.deps import MovieDep
from schemas.catalog import NO_NUL_PATTERN, MovieCreate, MovieRead, MovieUpdate
from schemas.pagination import MAX_PAGE_SIZE, Page

router = APIRouter(tags=["movies"])


def _columns(body: MovieCreate | MovieUpdate) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    if body.poster_url is not None:
        fields["poster_url"] = str(body.poster_url)
    return fields


@router.post("/movies", status_code=status.HTTP_201_CREATED)
async def create_movie(
    body: MovieCreate, _: AdminClaims, session: SessionDep, settings: SettingsDep
) -> MovieRead:
    """Add a movie to this region's catalog (admin)."""
    movie = await service.create_movie(session, region=settings.region, fields=_columns(body))
    return MovieRead.model_validate(movie)


@router.get("/movies")
async def list_movies(
    session: SessionDep,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL_PATTERN, description="title contains")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[MovieRead]:
    """Search the movies by title."""
    movies, total = await service.search_movies(session, q=q, limit=limit, offset=offset)
    items = [MovieRead.model_validate(movie) for movie in movies]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/movies/{movie_id}")
async def get_movie(movie: MovieDep) -> MovieRead:
    """Read a movie."""
    return MovieRead.model_validate(movie)


@router.patch("/movies/{movie_id}")
async def update_movie(
    body: MovieUpdate, _: AdminClaims, movie: MovieDep, session: SessionDep
) -> MovieRead:
    """Change some fields of a movie (admin)."""
    movie = await service.update_movie(session, movie=movie, changes=_columns(body))
    return MovieRead.model_validate(movie)
