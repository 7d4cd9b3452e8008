"""Reservations and their seats (with ticket codes)."""

from datetime import datetime

from sqlalchemy import CHAR, BigInteger, ForeignKey, ForeignKeyConstraint, Text
from sqlalchemy.orm import Mapped, mapped_column

from regional_api.db import Base


class Reservation(Base):
    """A hold that becomes a confirmed booking once paid, or is canceled or expires."""

    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id"))
    cinema_id: Mapped[str] = mapped_column(ForeignKey("cinemas.id"))
    user_id: Mapped[str | None] = mapped_column(Text)
    customer_email: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    hold_expires_at: Mapped[datetime | None]
    extensions: Mapped[int] = mapped_column(server_default="0")
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(CHAR(3))
    refund_minor: Mapped[int | None]
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]


class ReservationSeat(Base):
    """A seat of a reservation, its price snapshot and, once confirmed, its ticket code."""

    __tablename__ = "reservation_seats"
    __table_args__ = (
        ForeignKeyConstraint(
            ["show_id", "seat_id"], ["show_seats.show_id", "show_seats.seat_id"], ondelete="CASCADE"
        ),
    )

    reservation_id: Mapped[str] = mapped_column(
        ForeignKey("reservations.id", ondelete="CASCADE"), primary_key=True
    )
    show_id: Mapped[str] = mapped_column(Text)
    seat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seat_type: Mapped[str] = mapped_column(Text)
    price_minor: Mapped[int]
    ticket_code: Mapped[str | None] = mapped_column(Text, unique=True)
    checked_in_at: Mapped[datetime | None]
