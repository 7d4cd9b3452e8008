"""Payments, tickets, refunds, box-office sales and ticket check-in."""

from datetime import datetime
from enum import StrEnum

from pydantic import EmailStr, Field, field_validator

from schemas.base import RequestModel, ResponseModel

MAX_SALE_SEATS = 50
MAX_SEAT_ID = 2**63 - 1
TICKET_CODE_PATTERN = r"^[A-Za-z0-9_-]+$"  # secrets.token_urlsafe alphabet
ID_PATTERN = r"^[a-z0-9-]+$"
USER_ID_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, as user ids are


class PaymentMethod(StrEnum):
    """How a reservation is paid."""

    card = "card"
    cash = "cash"
    online = "online"


class BoxOfficeMethod(StrEnum):
    """How a counter sale is paid."""

    card = "card"
    cash = "cash"


class PaymentStatus(StrEnum):
    """Where a payment stands."""

    pending = "pending"
    completed = "completed"
    failed = "failed"
    refunding = "refunding"  # charged for seats that could not be sold, or voided: money returns
    refunded = "refunded"


def _normalize_card(value: object) -> object:
    # Card numbers are often typed in groups of four: accept spaces and dashes.
    return value.replace(" ", "").replace("-", "") if isinstance(value, str) else value


class PaymentCreate(RequestModel):
    """Pay a held reservation; the server computes the amount from its seats."""

    method: PaymentMethod
    card_number: str | None = Field(default=None, max_length=32)

    _clean_card = field_validator("card_number", mode="before")(_normalize_card)


class PaymentRead(ResponseModel):
    """A payment attempt."""

    id: str
    reservation_id: str
    method: PaymentMethod
    status: PaymentStatus
    amount_minor: int
    currency: str
    provider_ref: str | None
    failure_reason: str | None
    created_at: datetime
    completed_at: datetime | None


class TicketRead(ResponseModel):
    """One ticket: a sold seat and its unguessable check-in code."""

    code: str
    seat_id: int
    seat_label: str
    seat_type: str
    price_minor: int
    checked_in_at: datetime | None


class PaymentOutcome(ResponseModel):
    """A completed payment and the tickets it issued."""

    payment: PaymentRead
    reservation_id: str
    reservation_status: str
    tickets: list[TicketRead]


class TicketList(ResponseModel):
    """The tickets of a reservation (empty until it is confirmed)."""

    reservation_id: str
    show_id: str
    status: str
    tickets: list[TicketRead]


class RefundRead(ResponseModel):
    """Money returned for a canceled confirmed reservation."""

    id: int
    reservation_id: str
    payment_id: str | None
    amount_minor: int
    currency: str
    reason: str
    created_at: datetime


class SaleCreate(RequestModel):
    """Sell seats at the counter in one step: hold, charge and confirm."""

    seat_ids: list[int] = Field(min_length=1, max_length=MAX_SALE_SEATS)
    method: BoxOfficeMethod
    card_number: str | None = Field(default=None, max_length=32)
    customer_email: EmailStr | None = None
    user_id: str | None = Field(default=None, pattern=USER_ID_PATTERN, max_length=200)

    _clean_card = field_validator("card_number", mode="before")(_normalize_card)

    @field_validator("seat_ids")
    @classmethod
    def _valid_ids(cls, value: list[int]) -> list[int]:
        if any(seat_id < 1 or seat_id > MAX_SEAT_ID for seat_id in value):
            raise ValueError("seat ids are positive integers")
        if len(set(value)) != len(value):
            raise ValueError("seat ids must be distinct")
        return value


class SaleRead(ResponseModel):
    """A completed counter sale."""

    reservation_id: str
    show_id: str
    cinema_id: str
    amount_minor: int
    currency: str
    customer_email: str | None
    user_id: str | None
    payment: PaymentRead
    tickets: list[TicketRead]


class TicketValidate(RequestModel):
    """Check a ticket in at the door."""

    code: str = Field(pattern=TICKET_CODE_PATTERN, max_length=100)
    show_id: str | None = Field(default=None, pattern=ID_PATTERN, max_length=100)


class TicketCheckIn(ResponseModel):
    """A ticket that was valid and is now used."""

    code: str
    reservation_id: str
    show_id: str
    seat_id: int
    seat_label: str
    seat_type: str
    starts_at: datetime
    checked_in_at: datetime
