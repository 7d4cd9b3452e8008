"""The cinema directory: regions, their endpoints, cinemas, and the map the router polls."""

from pydantic import AnyHttpUrl, BaseModel, Field

from schemas.base import RequestModel, ResponseModel

REGION_CODE_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"


class RegionWrite(RequestModel):
    """Create or replace a region (admin)."""

    code: str = Field(pattern=REGION_CODE_PATTERN, max_length=32)
    name: str = Field(min_length=1, max_length=100)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    endpoints: list[AnyHttpUrl] = Field(min_length=1, max_length=16)


class RegionRead(ResponseModel):
    """A region and the base URLs of its regional_api endpoints."""

    code: str
    name: str
    currency: str
    endpoints: list[str]


class CinemaCreate(RequestModel):
    """Create a cinema (admin); the id is made by the directory and carries the region."""

    name: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    address: str = Field(default="", max_length=300)
    timezone: str = Field(min_length=1, max_length=64, description="IANA zone, e.g. Europe/Paris")
    region: str = Field(pattern=REGION_CODE_PATTERN, max_length=32)


class CinemaUpdate(RequestModel):
    """Change a cinema's descriptive fields (admin); the region never changes."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    city: str | None = Field(default=None, min_length=1, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)


class CinemaRead(ResponseModel):
    """A cinema of the chain."""

    id: str
    name: str
    city: str
    address: str
    timezone: str
    region: str


class DirectoryMap(BaseModel):
    """Everything the router needs to route, with a version that changes when anything does.

    Served at `GET /directory/map` with an `ETag` equal to `"<version>"`; a request carrying
    `If-None-Match` with the current ETag gets 304 and no body.
    """

    version: str
    regions: list[RegionRead]
    cinemas: list[CinemaRead]
