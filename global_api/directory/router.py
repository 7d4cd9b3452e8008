"""`/directory`: regions, cinemas and the versioned map (reads are public, writes admin)."""

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from common.auth import AdminClaims
from common.errors import Unprocessable
from common.etag import etag_matches
from global_api.db import SessionDep
from global_api.directory import service
from global_api.directory.cache import MapCache
from schemas.directory import (
    REGION_CODE_PATTERN,
    CinemaCreate,
    CinemaRead,
    CinemaUpdate,
    DirectoryMap,
    RegionRead,
    RegionWrite,
)

router = APIRouter(prefix="/directory", tags=["directory"])

RegionCode = Annotated[str, Path(pattern=REGION_CODE_PATTERN, max_length=32)]


@router.put("/regions/{code}")
async def put_region(
    _: AdminClaims, code: RegionCode, body: RegionWrite, session: SessionDep
) -> RegionRead:
    """Create or replace a region and its endpoints."""
    if body.code != code:
        raise Unprocessable("body code differs from the path", code="code_mismatch")
    return RegionRead.model_validate(await service.upsert_region(session, body=body))


@router.get("/regions")
async def list_regions(session: SessionDep) -> list[RegionRead]:
    """List every region."""
    return [RegionRead.model_validate(r) for r in await service.list_regions(session)]


@router.post("/cinemas", status_code=status.HTTP_201_CREATED)
async def create_cinema(_: AdminClaims, body: CinemaCreate, session: SessionDep) -> CinemaRead:
    """Add a cinema (its id is made here and carries the region)."""
    return CinemaRead.model_validate(await service.create_cinema(session, body=body))


@router.get("/cinemas")
async def list_cinemas(
    session: SessionDep,
    city: Annotated[str | None, Query(max_length=100)] = None,
    region: Annotated[str | None, Query(max_length=32)] = None,
) -> list[CinemaRead]:
    """List cinemas, optionally of one city or region."""
    cinemas = await service.list_cinemas(session, city=city, region=region)
    return [CinemaRead.model_validate(c) for c in cinemas]


@router.get("/cinemas/{cinema_id}")
async def read_cinema(cinema_id: str, session: SessionDep) -> CinemaRead:
    """Return one cinema."""
    return CinemaRead.model_validate(await service.get_cinema(session, cinema_id))


@router.patch("/cinemas/{cinema_id}")
async def update_cinema(
    _: AdminClaims, cinema_id: str, body: CinemaUpdate, session: SessionDep
) -> CinemaRead:
    """Change a cinema's name, city, address or time zone."""
    cinema = await service.update_cinema(session, cinema_id=cinema_id, body=body)
    return CinemaRead.model_validate(cinema)


@router.get(
    "/map",
    response_model=DirectoryMap,
    responses={304: {"description": "unchanged since the ETag given in If-None-Match"}},
)
async def directory_map(
    request: Request,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """Return everything the router needs to route, with an ETag; 304 when unchanged."""
    version = await service.directory_version(session)
    if etag_matches(if_none_match, f'"{version}"'):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=_headers(version))
    cache: MapCache = request.app.state.map_cache
    version, body = await cache.get(session, version=version)
    return Response(body, media_type="application/json", headers=_headers(version))


def _headers(version: str) -> dict[str, str]:
    return {"ETag": f'"{version}"', "Cache-Control": "no-cache"}
