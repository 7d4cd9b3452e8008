"""Decide where a request goes from its path alone: global_api, or a region and its path."""

from collections.abc import Container, Mapping
from dataclasses import dataclass

from common.ids import parse_id

GLOBAL_PREFIXES = frozenset({"auth", "users", "directory", ".well-known"})

# Paths the router answers itself; everything else is proxied.
OWN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/me/reservations", "/search/shows", "/app"}
)
OWN_PREFIXES = ("/router/", "/app/")

# A replica's own pages: metrics are for Prometheus, which scrapes replicas directly.
INTERNAL_SEGMENTS = frozenset({"metrics", "docs", "redoc", "openapi.json"})

# Resource-addressed collections and the id kind their first path segment must carry.
COLLECTION_KINDS = {
    "cinemas": "cin",
    "halls": "hall",
    "movies": "mov",
    "shows": "show",
    "reservations": "res",
    "payments": "pay",
    "sales": "sale",
}


@dataclass(slots=True)
class Route:
    """Where to send a request: `region` None means global_api; `path` is the upstream path."""

    region: str | None
    path: str


class RouteNotFound(Exception):
    """No upstream serves this path; `cinema_miss` means a map refresh might find it."""

    def __init__(self, detail: str, *, cinema_miss: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.cinema_miss = cinema_miss


def answered_by_router(path: str) -> bool:
    """Whether the router answers `path` itself rather than proxying it."""
    return path in OWN_PATHS or path.startswith(OWN_PREFIXES)


def resolve(
    path: str,
    raw_path: str,
    *,
    regions: Container[str],
    cinema_regions: Mapping[str, str],
) -> Route:
    """Route by prefix, by `/regions/{region}/...`, or by the region inside the first id."""
    parts = path.split("/", 3)
    first = parts[1] if len(parts) > 1 else ""
    if first in GLOBAL_PREFIXES:
        return Route(None, raw_path)
    if first == "regions":
        return _region_prefixed(parts, raw_path, regions)
    kind = COLLECTION_KINDS.get(first)
    if kind is None:
        raise RouteNotFound(f"no route for {path}")
    resource_id = parts[2] if len(parts) > 2 else ""
    if not resource_id:
        raise RouteNotFound(f"{path} is region-scoped: use /regions/{{region}}/{first}")
    parsed = parse_id(resource_id)
    if parsed is None or parsed[0] != kind:
        raise RouteNotFound(f"malformed {first} id {resource_id!r}")
    region = parsed[1]
    if kind == "cin":
        mapped = cinema_regions.get(resource_id)
        if mapped is None:
            raise RouteNotFound(f"unknown cinema {resource_id}", cinema_miss=True)
        region = mapped
    if region not in regions:
        raise RouteNotFound(f"unknown region {region!r}")
    return Route(region, raw_path)


def _region_prefixed(parts: list[str], raw_path: str, regions: Container[str]) -> Route:
    region = parts[2] if len(parts) > 2 else ""
    if region not in regions:
        raise RouteNotFound(f"unknown region {region!r}")
    prefix = f"/regions/{region}"
    if len(parts) < 4 or not parts[3] or not raw_path.startswith(prefix + "/"):
        raise RouteNotFound(f"nothing to route under {prefix}")
    if parts[3].split("/", 1)[0] in INTERNAL_SEGMENTS:
        raise RouteNotFound(f"nothing to route under {prefix}")
    return Route(region, raw_path[len(prefix) :])
