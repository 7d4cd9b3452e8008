"""`GET /router/regions`: region and endpoint health for the admin console."""

from fastapi import APIRouter

from common.auth import OptionalClaims
from router.deps import StateDep
from router.upstreams.pool import RegionPool
from schemas.auth import Role
from schemas.router import EndpointHealth, RegionHealth, RouterRegions

router = APIRouter(prefix="/router", tags=["router"])


@router.get("/regions")
async def list_regions(state: StateDep, claims: OptionalClaims) -> RouterRegions:
    """List regions with their endpoint health; endpoint URLs only for admins."""
    admin = claims is not None and claims.role is Role.admin
    names = {
        region.code: region.name
        for region in (state.directory.map.regions if state.directory.map else [])
    }
    return RouterRegions(
        map_version=state.directory.version,
        map_source=state.directory.source,
        regions=[
            _region(pool, names.get(code, code), with_urls=admin)
            for code, pool in sorted(state.upstreams.regions.items())
        ],
    )


def _region(pool: RegionPool, name: str, *, with_urls: bool) -> RegionHealth:
    healthy = pool.healthy_count()
    total = len(pool.endpoints)
    return RegionHealth(
        code=pool.code,
        name=name,
        state="up" if healthy == total and total else "degraded" if healthy else "down",
        healthy_endpoints=healthy,
        endpoints=[
            EndpointHealth(
                url=endpoint.url if with_urls else None,
                state="healthy" if endpoint.healthy else "ejected",
                in_flight=endpoint.in_flight,
                consecutive_failures=max(endpoint.probe_failures, endpoint.traffic_failures),
            )
            for endpoint in pool.endpoints
        ],
    )
