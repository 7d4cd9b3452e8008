"""Sales and occupancy reports: per show, per cinema and local day, per movie.

Money is integer minor units with its currency. `revenue_minor` counts the seats of confirmed
(paid) reservations; money returned for canceled reservations is reported apart as refunds, so
what was taken in total is `revenue_minor + refunds_minor`. Occupancy is sold seats over
sellable (non-blocked) seats, in percent with one decimal.
"""

from datetime import date, datetime

from schemas.base import ResponseModel

MAX_REPORT_DAYS = 366


class SeatTypeFigures(ResponseModel):
    """One seat type of one show."""

    seat_type: str
    capacity: int
    sold: int
    held: int
    free: int
    revenue_minor: int


class ShowReport(ResponseModel):
    """Capacity, sales and refunds of one show."""

    show_id: str
    cinema_id: str
    movie_id: str
    movie_title: str
    starts_at: datetime
    status: str
    currency: str
    capacity: int
    sold: int
    held: int
    free: int
    blocked: int
    occupancy_pct: float
    revenue_minor: int
    refunds_count: int
    refunds_minor: int
    by_seat_type: list[SeatTypeFigures]


class DailyFigures(ResponseModel):
    """One local day of one cinema (shows are counted on the local day they start)."""

    day: date
    currency: str
    shows: int
    capacity: int
    tickets_sold: int
    occupancy_pct: float
    revenue_minor: int
    refunds_count: int
    refunds_minor: int


class DailyReport(ResponseModel):
    """A cinema's figures per local day, in the cinema's IANA timezone (days without shows
    are left out)."""

    cinema_id: str
    timezone: str
    date_from: date
    date_to: date
    days: list[DailyFigures]


class MovieFigures(ResponseModel):
    """One movie's figures over a period."""

    movie_id: str
    title: str
    currency: str
    shows: int
    tickets_sold: int
    revenue_minor: int
    refunds_minor: int


class MovieReport(ResponseModel):
    """Figures per movie; staff see only their cinemas (`cinema_ids`), admins all (null)."""

    date_from: date
    date_to: date
    cinema_ids: list[str] | None
    movies: list[MovieFigures]
