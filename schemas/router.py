"""The router's own answers: region health for the admin console, fan-out results."""

from typing import Any

from pydantic import Field

from schemas.base import ResponseModel


class EndpointHealth(ResponseModel):
    """One regional endpoint as the router sees it; `url` only for admins."""

    url: str | None = None
    state: str = Field(description="healthy | ejected")
    in_flight: int = 0
    consecutive_failures: int = 0


class RegionHealth(ResponseModel):
    """A region, how many of its endpoints take traffic, and each endpoint's state."""

    code: str
    name: str
    state: str = Field(description="up | degraded | down")
    healthy_endpoints: int
    endpoints: list[EndpointHealth]


class RouterRegions(ResponseModel):
    """Every region known to the router, and where its directory map came from."""

    map_version: str | None
    map_source: str = Field(description="global | static | none")
    regions: list[RegionHealth]


class FanOutResult(ResponseModel):
    """A cross-region read: merged items, each region's outcome, and who did not answer."""

    items: list[dict[str, Any]]
    regions: dict[str, str] = Field(description="region -> ok | timeout | unavailable | error")
    unavailable_regions: list[str]
    next_before: str | None = Field(
        None, description="`/me/reservations`: pass as `before` for the next page; null at the end"
    )
