"""The regional catalog on the wire: mirrored cinemas, halls and seat maps, movies, shows."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from schemas.base import RequestModel, ResponseModel

# PostgreSQL text cannot hold NUL: refuse it at the edge (422) rather than fail in the database.
NO_NUL_PATTERN = r"^[^\x00]*$"


def reject_nul(value: Any) -> Any:
    """Refuse NUL characters in a string, or in the strings of a list or dict."""
    if isinstance(value, str):
        texts: list[Any] = [value]
    elif isinstance(value, list):
        texts = value
    elif isinstance(value, dict):
        texts = [*value.keys(), *value.values()]
    else:
        return value
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ValueError("text must not contain NUL characters")
    return value


class CatalogRequest(RequestModel):
    """A catalog request body: no NUL characters in any text."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)


class SeatType(StrEnum):
    """The kinds of seat a hall can have; each show prices every kind its hall uses."""

    standard = "standard"
    premium = "premium"
    vip = "vip"
    wheelchair = "wheelchair"
    companion = "companion"


class SeatStatus(StrEnum):
    """A seat's state at one show; a lapsed hold is reported as free."""

    free = "free"
    held = "held"
    sold = "sold"
    blocked = "blocked"


class ShowStatus(StrEnum):
    """Whether a show will run."""

    scheduled = "scheduled"
    canceled = "canceled"


# --- cinemas -------------------------------------------------------------------------------


class CinemaMirrorWrite(CatalogRequest):
    """Create or replace this region's copy of a cinema (admin; seeds without global_api)."""

    name: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    address: str = Field(default="", max_length=300)
    timezone: str = Field(min_length=1, max_length=64, description="IANA zone, e.g. Europe/Paris")


class CinemaMirrorRead(ResponseModel):
    """A cinema of this region as the region knows it."""

    id: str
    name: str
    city: str
    address: str
    timezone: str
    region: str
    synced_at: datetime


# --- halls ---------------------------------------------------------------------------------

DEFAULT_LEGEND = {
    "A": "standard",
    "P": "premium",
    "V": "vip",
    "W": "wheelchair",
    "C": "companion",
    "X": "standard-blocked",
}


class HallWrite(CatalogRequest):
    """A hall from one compact layout document: one string per row, one char per seat.

    `_` or a space is a gap (aisle); every other char is a seat whose type comes from `legend`
    (`"<type>"` or `"<type>-blocked"`). Rows are labelled A, B, C... from the screen (I and O
    skipped) unless `row_labels` names the rows that hold seats, front to back.
    """

    # Leading and trailing spaces in a row are gaps that position the seats: keep them.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    name: str = Field(min_length=1, max_length=100)
    rows: list[str] = Field(max_length=1000)
    legend: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LEGEND), max_length=64)
    row_labels: list[str] | None = Field(default=None, max_length=1000)

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("name must not be blank")
        return stripped


class HallSeat(ResponseModel):
    """One seat of a hall's current seat map."""

    id: int
    label: str
    number: int
    grid_row: int
    grid_col: int
    seat_type: SeatType
    blocked: bool


class HallRow(ResponseModel):
    """One labelled row of seats, left to right."""

    label: str
    grid_row: int
    seats: list[HallSeat]


class HallRead(ResponseModel):
    """A hall without its seats."""

    id: str
    cinema_id: str
    name: str
    seat_count: int
    grid_rows: int
    grid_cols: int
    seat_types: list[SeatType]
    created_at: datetime
    updated_at: datetime


class HallDetail(HallRead):
    """A hall with its seat map and the layout document it was built from."""

    layout: HallWrite
    rows: list[HallRow]


# --- movies --------------------------------------------------------------------------------


def clean_genres(value: list[str]) -> list[str]:
    """Strip genres, refuse blank or long ones and drop duplicates (order kept)."""
    genres = [genre.strip() for genre in value]
    if any(not genre or len(genre) > 50 for genre in genres):
        raise ValueError("each genre must be 1-50 characters")
    return list(dict.fromkeys(genres))


class MovieCreate(CatalogRequest):
    """Add a movie to this region's catalog (admin)."""

    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=5000)
    genres: list[str] = Field(default_factory=list, max_length=20)
    duration_minutes: int = Field(ge=1, le=1000)
    age_rating: str = Field(default="", max_length=20)
    poster_url: AnyHttpUrl | None = None
    external_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="e.g. the TMDB id; unique"
    )

    @field_validator("genres")
    @classmethod
    def _clean_genres(cls, value: list[str]) -> list[str]:
        return clean_genres(value)


class MovieUpdate(CatalogRequest):
    """Change some fields of a movie (admin); omitted fields stay."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=5000)
    genres: list[str] | None = Field(default=None, max_length=20)
    duration_minutes: int | None = Field(default=None, ge=1, le=1000)
    age_rating: str | None = Field(default=None, max_length=20)
    poster_url: AnyHttpUrl | None = None
    external_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("genres")
    @classmethod
    def _clean_genres(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else clean_genres(value)

    @model_validator(mode="after")
    def _required_not_null(self) -> "MovieUpdate":
        for name in ("title", "description", "genres", "duration_minutes", "age_rating"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null (only poster_url and external_id can)")
        return self


class MovieRead(ResponseModel):
    """A movie of this region's catalog."""

    id: str
    title: str
    description: str
    genres: list[str]
    duration_minutes: int
    age_rating: str
    poster_url: str | None
    external_id: str | None
    created_at: datetime


# --- shows ---------------------------------------------------------------------------------


class ShowCreate(CatalogRequest):
    """Schedule a movie in a hall; `prices` must cover every seat type the hall sells."""

    movie_id: str = Field(min_length=1, max_length=64)
    starts_at: AwareDatetime = Field(description="ISO 8601 with an offset, e.g. ...T20:00:00Z")
    prices: dict[SeatType, int] = Field(
        min_length=1, description="amount in minor units per seat type"
    )

    @field_validator("starts_at")
    @classmethod
    def _plausible_start(cls, value: datetime) -> datetime:
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("starts_at is out of range") from None
        if not 2000 <= utc.year <= 2100:
            raise ValueError("starts_at must be between the years 2000 and 2100")
        return utc

    @field_validator("prices")
    @classmethod
    def _non_negative(cls, value: dict[SeatType, int]) -> dict[SeatType, int]:
        for seat_type, amount in value.items():
            if amount < 0 or amount > 10_000_000:
                raise ValueError(f"price of {seat_type.value} must be 0..10000000 minor units")
        return value


class ShowRead(ResponseModel):
    """A show with what a listing needs: movie, hall, cinema, local time, prices, free seats."""

    id: str
    status: ShowStatus
    movie_id: str
    movie_title: str
    duration_minutes: int
    hall_id: str
    hall_name: str
    cinema_id: str
    cinema_name: str
    city: str
    timezone: str
    starts_at: datetime
    starts_at_local: datetime
    ends_at: datetime
    currency: str
    prices: dict[str, int]
    seat_count: int
    free_seats: int


class ShowSeat(ResponseModel):
    """One seat at one show: where it is, what it costs and whether it can be taken."""

    seat_id: int
    label: str
    row_label: str
    number: int
    grid_row: int
    grid_col: int
    seat_type: SeatType
    price_minor: int
    status: SeatStatus


class ShowSeatMap(ResponseModel):
    """Availability of every seat of a show, with the grid size to draw the hall."""

    show_id: str
    show_status: ShowStatus
    hall_id: str
    currency: str
    grid_rows: int
    grid_cols: int
    counts: dict[SeatStatus, int]
    seats: list[ShowSeat]
