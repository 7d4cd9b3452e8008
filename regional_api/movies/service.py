"""The region's movie catalog: create, search, read, change."""

from typing import Any

from prometheus_client import Counter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from common.ids import new_id
from regional_api.db import contains_pattern, save
from regional_api.movies.models import Movie

MOVIES_CREATED = Counter("catalog_movies_created_total", "Movies created")
MOVIES_UPDATED = Counter("catalog_movies_updated_total", "Movies changed")


def title_matches(q: str) -> Any:
    """A filter: the title contains `q`, case-insensitively (wildcards in `q` are literal)."""
    return Movie.title.ilike(contains_pattern(q.strip()), escape="\\")


async def _save(session: AsyncSession, movie: Movie, changes: dict[str, Any]) -> None:
    """Apply `changes` and flush in a savepoint; a reused external id is 409 `movie_exists`."""
    external_id = changes.get("external_id", movie.external_id)

    async def extra() -> dict[str, Any]:
        existing = await session.execute(select(Movie.id).where(Movie.external_id == external_id))
        return {"movie_id": existing.scalar_one_or_none()}

    await save(session, movie, changes, code="movie_exists", extra=extra)


async def create_movie(session: AsyncSession, *, region: str, fields: dict[str, Any]) -> Movie:
    """Add a movie; `fields` are the columns of `MovieCreate`."""
    movie = Movie(id=new_id("mov", region), **fields)
    await _save(session, movie, {})
    await session.refresh(movie)
    MOVIES_CREATED.inc()
    return movie


async def get_movie(session: AsyncSession, *, movie_id: str) -> Movie | None:
    """The movie, if it exists."""
    return await session.get(Movie, movie_id)


async def update_movie(session: AsyncSession, *, movie: Movie, changes: dict[str, Any]) -> Movie:
    """Apply the given column changes to a movie."""
    await _save(session, movie, changes)
    MOVIES_UPDATED.inc()
    return movie


async def search_movies(
    session: AsyncSession, *, q: str | None, limit: int, offset: int
) -> tuple[list[Movie], int]:
    """A page of movies, optionally whose title contains `q`, and the total count."""
    query = select(Movie)
    if q and q.strip():
        query = query.where(title_matches(q))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar()
    rows = await session.execute(
        query.order_by(func.lower(Movie.title), Movie.id).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total or 0)
