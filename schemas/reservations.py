"""Holds and reservations on the wire."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator

from schemas.base import RequestModel, ResponseModel

MAX_SEATS_PER_HOLD = 50
MAX_SEAT_ID = 2**63 - 1

HoldSeatType = Literal["standard", "premium", "vip", "wheelchair", "companion"]


class ReservationStatus(StrEnum):
    """Where a reservation stands; a held reservation past its deadline reads as expired."""

    held = "held"
    confirmed = "confirmed"
    canceled = "canceled"
    expired = "expired"


class HoldCreate(RequestModel):
    """Hold these seats of a show, all or none."""

    seat_ids: list[int] = Field(min_length=1, max_length=MAX_SEATS_PER_HOLD)

    @field_validator("seat_ids")
    @classmethod
    def _valid_ids(cls, value: list[int]) -> list[int]:
        # min/max run in C; a constrained item type would be faster still, but its 422 names
        # the item and says "greater than or equal to 1" instead of this message.
        if min(value) < 1 or max(value) > MAX_SEAT_ID:  # min_length=1: never empty here
            raise ValueError("seat ids are positive integers")
        if len(set(value)) != len(value):
            raise ValueError("seat ids must be unique")
        return value


class BestAvailableCreate(RequestModel):
    """Hold the best `count` adjacent free seats, optionally of one seat type."""

    count: int = Field(ge=1, le=MAX_SEATS_PER_HOLD)
    seat_type: HoldSeatType | None = None


class ReservationCancel(RequestModel):
    """Cancel a reservation, with an optional reason for the record."""

    reason: str = Field(default="", max_length=300)


class ShowCancel(RequestModel):
    """Cancel a show: every reservation of it is canceled and refunded."""

    reason: str = Field(default="", max_length=300)


class ReservationSeatRead(ResponseModel):
    """A seat of a reservation with the price it was held at; a ticket code once confirmed."""

    seat_id: int
    label: str
    row_label: str
    number: int
    seat_type: str
    price_minor: int
    ticket_code: str | None = None


class ReservationRead(ResponseModel):
    """A reservation: its seats, amount, deadline and state."""

    id: str
    show_id: str
    cinema_id: str
    user_id: str | None
    channel: str
    status: ReservationStatus
    seats: list[ReservationSeatRead]
    amount_minor: int
    currency: str
    refund_minor: int | None
    hold_expires_at: datetime | None
    extensions_used: int
    extensions_left: int
    created_at: datetime
    confirmed_at: datetime | None
    canceled_at: datetime | None
    show_starts_at: datetime
    movie_title: str


class ShowCancelRead(ResponseModel):
    """What canceling a show did."""

    show_id: str
    status: str
    canceled_reservations: int
    refunded_reservations: int
    refunded_minor: int
