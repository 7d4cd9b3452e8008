"""This region's mirror of its cinemas, and the rule that ids must belong to this region."""

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prometheus_client import Counter
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFound, Unprocessable
from common.ids import parse_id
from regional_api.cinemas.models import Cinema

CINEMAS_MIRRORED = Counter("catalog_cinemas_mirrored_total", "Cinema mirror upserts", ["source"])


def require_local_id(value: str, *, kind: str, region: str, status: int = 404) -> str:
    """Return `value` if it is an id of `kind` in this region, else raise (404 for paths).

    Query and body fields pass `status=422`: the request is wrong, not the resource missing.
    """
    parsed = parse_id(value)
    if parsed is None or parsed[0] != kind:
        raise NotFound(f"no such {kind} id: {value[:80]!r}", code="not_found", status=status)
    if parsed[1] != region:
        raise NotFound(
            f"{value} belongs to region {parsed[1]}, this is {region}",
            code="wrong_region",
            status=status,
            region=parsed[1],
            served_region=region,
        )
    return value


def check_timezone(name: str) -> str:
    """Return `name` if it is a known IANA zone, else raise 422 `invalid_timezone`."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Unprocessable(f"unknown IANA timezone {name!r}", code="invalid_timezone") from None
    return name


async def get_cinema(session: AsyncSession, *, cinema_id: str) -> Cinema | None:
    """The mirrored cinema, if this region knows it."""
    return await session.get(Cinema, cinema_id)


async def upsert_cinema(
    session: AsyncSession,
    *,
    cinema_id: str,
    name: str,
    city: str,
    address: str,
    timezone: str,
    now: datetime,
    source: str,
) -> Cinema:
    """Create or refresh the mirrored copy of a cinema."""
    values = {
        "name": name,
        "city": city,
        "address": address,
        "timezone": check_timezone(timezone),
        "synced_at": now,
    }
    statement = (
        insert(Cinema)
        .values(id=cinema_id, **values)
        .on_conflict_do_update(index_elements=[Cinema.id], set_=values)
        .returning(Cinema)
        .execution_options(populate_existing=True)
    )
    cinema = (await session.execute(statement)).scalar_one()
    CINEMAS_MIRRORED.labels(source).inc()
    return cinema


async def list_cinemas(
    session: AsyncSession, *, city: str | None, limit: int, offset: int
) -> tuple[list[Cinema], int]:
    """A page of mirrored cinemas (optionally in one city) and the total count."""
    query = select(Cinema)
    if city:
        query = query.where(func.lower(Cinema.city) == city.strip().lower())
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar()
    rows = await session.execute(
        query.order_by(Cinema.city, Cinema.name, Cinema.id).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total or 0)
