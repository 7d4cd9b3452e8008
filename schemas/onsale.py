"""Announced on-sales and their waiting room on the wire."""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, Field

from schemas.base import RequestModel, ResponseModel

ADMISSION_PASS_HEADER = "X-Admission-Pass"  # noqa: S105 - a header name
LINE_TICKET_HEADER = "X-Line-Ticket"


class OnSaleSet(RequestModel):
    """Announce an on-sale: its opening and whether customers queue in a waiting room."""

    opens_at: AwareDatetime
    waiting_room: bool = True
    window_minutes: int = Field(10, ge=1, le=120, description="each admitted customer's window")
    max_admit_per_second: float = Field(20.0, gt=0, le=10_000, description="admission ceiling")


class OnSaleRead(ResponseModel):
    """A show's on-sale and its line, as the admin console shows it live."""

    show_id: str
    opens_at: datetime | None = Field(description="None: the show has no on-sale")
    waiting_room: bool
    window_minutes: int
    max_admit_per_second: float
    line_length: int = Field(description="customers waiting, not yet admitted")
    admitted: int = Field(description="customers admitted so far")
    admit_rate: float = Field(description="customers admitted per second now")
    sold: int = Field(description="seats sold")
    free: int = Field(description="seats free now")
    sold_out: bool


class OnSaleMovieRead(ResponseModel):
    """The shows of a movie an on-sale was set for."""

    movie_id: str
    show_ids: list[str]


class LineState(StrEnum):
    """Where a customer stands in a show's waiting room."""

    open = "open"  # no waiting room: go ahead
    not_in_line = "not_in_line"
    waiting = "waiting"
    admitted = "admitted"
    expired = "expired"  # the purchase window is over; joining again queues at the end
    sold_out = "sold_out"


class LineStatus(ResponseModel):
    """A customer's place in a show's waiting room."""

    show_id: str
    state: LineState
    opens_at: datetime | None = None
    position: int | None = Field(None, description="1 = next; unknown before the opening")
    line_length: int = 0
    estimated_wait_seconds: float | None = None
    admission_pass: str | None = Field(None, description=f"send as {ADMISSION_PASS_HEADER}")
    pass_expires_at: datetime | None = None
    line_ticket: str | None = Field(
        None, description=f"send as {LINE_TICKET_HEADER} with each poll: answered without a lookup"
    )
    poll_after_seconds: float | None = Field(None, description="when to ask again")


class LineProgress(ResponseModel):
    """A show's line as everyone may see it: each customer works out its own place from it.

    `version` changes only when every waiting customer must hear it (the sell-out, the on-sale
    set, moved or dropped; not the draw: an early customer's number is its draw key); the rest is how far admission has gone (`admitted_mark` in the
    line numbers of the tickets).
    """

    show_id: str
    version: str = Field(description="send back as `seen` to the router's watch")
    waiting_room: bool
    opens_at: datetime | None = None
    drawn: bool = Field(False, description="the early customers have their places")
    admitted_through: int = Field(0, description="ranks up to this one are admitted")
    admitted_mark: int = Field(
        0,
        description="line numbers (a line ticket's) up to this one are admitted: an early"
        " customer's is its draw key (below 10^12), a later one's 10^12 + its rank",
    )
    early_count: int = Field(0, description="customers the draw ranked (0 before it)")
    line_length: int = 0
    admit_rate: float = 0.0
    max_admit_per_second: float = 0.0
    sold_out: bool = False
