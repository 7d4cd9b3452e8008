"""Movie dependencies: the path's movie, or 404."""

from typing import Annotated

from fastapi import Depends

from common.errors import NotFound
from regional_api.cinemas.service import require_local_id
from regional_api.config import SettingsDep
from regional_api.db import SessionDep
from regional_api.movies import service
from regional_api.movies.models import Movie


async def resolve_movie(movie_id: str, session: SessionDep, settings: SettingsDep) -> Movie:
    """The movie named in the path."""
    require_local_id(movie_id, kind="mov", region=settings.region)
    movie = await service.get_movie(session, movie_id=movie_id)
    if movie is None:
        raise NotFound(f"no movie {movie_id}", code="movie_not_found")
    return movie


MovieDep = Annotated[Movie, Depends(resolve_movie)]
