"""The cinema directory: regions, cinemas, and the versioned map the router polls."""

import logging
import zoneinfo
from functools import lru_cache

from prometheus_client import Counter
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch_one, session_connection
from common.errors import NotFound, Unprocessable
from common.ids import new_id
from global_api.directory.models import Cinema, Region
from schemas.directory import CinemaCreate, CinemaUpdate, DirectoryMap, RegionWrite

log = logging.getLogger("global_api.directory")

DIRECTORY_WRITES = Counter("global_directory_writes_total", "Directory writes", ["kind"])

_VERSION = "SELECT epoch || '-' || counter FROM directory_version"
# One statement, so the version and the rows come from the same snapshot.
_MAP = """
SELECT v.epoch || '-' || v.counter AS version,
    coalesce((SELECT json_agg(json_build_object(
        'code', code, 'name', name, 'currency', currency, 'endpoints', endpoints) ORDER BY code)
        FROM regions), '[]'::json) AS regions,
    coalesce((SELECT json_agg(json_build_object(
        'id', id, 'name', name, 'city', city, 'address', address, 'timezone', timezone,
        'region', region) ORDER BY id)
        FROM cinemas), '[]'::json) AS cinemas
FROM directory_version AS v
"""


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(name: str) -> str:
    """Return `name` if it is an IANA time zone, else raise 422 `invalid_timezone`."""
    if name not in _known_zones():
        raise Unprocessable(f"unknown IANA time zone {name!r}", code="invalid_timezone")
    return name


async def upsert_region(session: AsyncSession, *, body: RegionWrite) -> Region:
    """Create or replace a region."""
    values = {
        "name": body.name,
        "currency": body.currency,
        "endpoints": [str(url).rstrip("/") for url in body.endpoints],
    }
    stmt = (
        pg_insert(Region)
        .values(code=body.code, **values)
        .on_conflict_do_update(
            index_elements=[Region.code], set_={**values, "updated_at": func.now()}
        )
        .returning(Region)
    )
    region = (await session.execute(stmt)).scalar_one()
    DIRECTORY_WRITES.labels("region").inc()
    log.info("region written", extra={"fields": {"region": body.code}})
    return region


async def list_regions(session: AsyncSession) -> list[Region]:
    """Every region, by code."""
    return list((await session.execute(select(Region).order_by(Region.code))).scalars())


async def create_cinema(session: AsyncSession, *, body: CinemaCreate) -> Cinema:
    """Add a cinema to a region; its id carries the region."""
    check_timezone(body.timezone)
    if await session.get(Region, body.region) is None:
        raise Unprocessable(f"no region {body.region!r}", code="unknown_region")
    cinema = Cinema(id=new_id("cin", body.region), **body.model_dump())
    session.add(cinema)
    await session.flush()
    await session.refresh(cinema)
    DIRECTORY_WRITES.labels("cinema").inc()
    log.info("cinema created", extra={"fields": {"cinema_id": cinema.id}})
    return cinema


async def get_cinema(session: AsyncSession, cinema_id: str) -> Cinema:
    """The cinema with this id, or 404."""
    cinema = await session.get(Cinema, cinema_id)
    if cinema is None:
        raise NotFound("no such cinema", code="cinema_not_found")
    return cinema


async def update_cinema(session: AsyncSession, *, cinema_id: str, body: CinemaUpdate) -> Cinema:
    """Change a cinema's descriptive fields."""
    cinema = await get_cinema(session, cinema_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "timezone" in changes:
        check_timezone(changes["timezone"])
    for name, value in changes.items():
        setattr(cinema, name, value)
    if changes:
        cinema.updated_at = func.now()
        await session.flush()
        await session.refresh(cinema)
        DIRECTORY_WRITES.labels("cinema").inc()
    return cinema


async def list_cinemas(
    session: AsyncSession, *, city: str | None, region: str | None
) -> list[Cinema]:
    """Cinemas, optionally in one city (any case) or region, by id."""
    stmt = select(Cinema).order_by(Cinema.id)
    if city:
        stmt = stmt.where(func.lower(Cinema.city) == city.strip().lower())
    if region:
        stmt = stmt.where(Cinema.region == region)
    return list((await session.execute(stmt)).scalars())


async def directory_version(session: AsyncSession) -> str:
    """The current directory version (one tiny query)."""
    row = await fetch_one(await session_connection(session), _VERSION)
    version: str = row[0]
    return version


async def render_map(session: AsyncSession) -> DirectoryMap:
    """The whole directory map, consistent with its version."""
    row = await fetch_one(await session_connection(session), _MAP)
    return DirectoryMap.model_validate(
        {"version": row.version, "regions": row.regions, "cinemas": row.cinemas}
    )
