"""Endpoints of this region's cinema mirror."""

from typing import Annotated

from fastapi import APIRouter, Query

from common.auth import AdminClaims
from regional_api.cinemas import service
from regional_api.cinemas.deps import CinemaDep, mirror_from_directory
from regional_api.cinemas.models import Cinema
from regional_api.clock import ClockDep
from regional_api.config import SettingsDep
from regional_api.db import SessionDep
from schemas.catalog import NO_NUL_PATTERN, CinemaMirrorRead, CinemaMirrorWrite
from schemas.pagination import MAX_PAGE_SIZE, Page

router = APIRouter(tags=["cinemas"])


def cinema_read(cinema: Cinema, region: str) -> CinemaMirrorRead:
    """The wire form of a mirrored cinema."""
    return CinemaMirrorRead(
        id=cinema.id,
        name=cinema.name,
        city=cinema.city,
        address=cinema.address,
        timezone=cinema.timezone,
        region=region,
        synced_at=cinema.synced_at,
    )


@router.get("/cinemas")
async def list_cinemas(
    session: SessionDep,
    settings: SettingsDep,
    city: Annotated[str | None, Query(max_length=100, pattern=NO_NUL_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[CinemaMirrorRead]:
    """List the cinemas this region has mirrored."""
    cinemas, total = await service.list_cinemas(session, city=city, limit=limit, offset=offset)
    items = [cinema_read(cinema, settings.region) for cinema in cinemas]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/cinemas/{cinema_id}")
async def get_cinema(cinema: CinemaDep, settings: SettingsDep) -> CinemaMirrorRead:
    """Read a cinema of this region (mirrored from the directory on first use)."""
    return cinema_read(cinema, settings.region)


@router.put("/cinemas/{cinema_id}")
async def put_cinema(
    cinema_id: str,
    body: CinemaMirrorWrite,
    _: AdminClaims,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> CinemaMirrorRead:
    """Create or replace this region's copy of a cinema (admin)."""
    service.require_local_id(cinema_id, kind="cin", region=settings.region)
    cinema = await service.upsert_cinema(
        session,
        cinema_id=cinema_id,
        name=body.name,
        city=body.city,
        address=body.address,
        timezone=body.timezone,
        now=clock.now(),
        source="admin",
    )
    return cinema_read(cinema, settings.region)


@router.post("/cinemas/{cinema_id}/sync")
async def sync_cinema(
    cinema_id: str, _: AdminClaims, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> CinemaMirrorRead:
    """Refresh this region's copy of a cinema from the global directory now (admin)."""
    service.require_local_id(cinema_id, kind="cin", region=settings.region)
    cinema = await mirror_from_directory(session, settings, clock, cinema_id)
    return cinema_read(cinema, settings.region)
