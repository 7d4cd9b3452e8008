"""Cinema dependencies: resolve a path's cinema (mirroring it on first sight) and who may manage it."""

from typing import Annotated

from fastapi import Depends

from common.auth import Claims
from common.errors import Forbidden, NotFound
from regional_api.cinemas import directory, service
from regional_api.cinemas.models import Cinema
from regional_api.clock import ClockDep
from regional_api.config import SettingsDep
from regional_api.db import SessionDep
from schemas.auth import TokenClaims


async def resolve_cinema(
    cinema_id: str, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> Cinema:
    """The cinema named in the path; an unknown one of this region is fetched once and mirrored."""
    service.require_local_id(cinema_id, kind="cin", region=settings.region)
    cinema = await service.get_cinema(session, cinema_id=cinema_id)
    if cinema is not None:
        return cinema
    return await mirror_from_directory(session, settings, clock, cinema_id)


async def mirror_from_directory(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, cinema_id: str
) -> Cinema:
    """Fetch a cinema of this region from the global directory and upsert the mirror."""
    record = await directory.fetch_cinema(settings.global_api_url, cinema_id)
    if record is None or record.region != settings.region:
        raise NotFound(f"no cinema {cinema_id}", code="cinema_not_found")
    return await service.upsert_cinema(
        session,
        cinema_id=record.id,
        name=record.name,
        city=record.city,
        address=record.address,
        timezone=record.timezone,
        now=clock.now(),
        source="directory",
    )


CinemaDep = Annotated[Cinema, Depends(resolve_cinema)]


def require_manager(claims: TokenClaims, cinema_id: str) -> None:
    """403 unless the caller is an admin or staff of the cinema."""
    if not claims.may_manage(cinema_id):
        raise Forbidden(f"you may not manage cinema {cinema_id}", cinema_id=cinema_id)


async def managed_cinema(claims: Claims, cinema: CinemaDep) -> Cinema:
    """The path's cinema, if the caller is an admin or staff of that cinema (401/403 otherwise)."""
    require_manager(claims, cinema.id)
    return cinema


ManagedCinema = Annotated[Cinema, Depends(managed_cinema)]
