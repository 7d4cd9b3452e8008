"""Shows, their prices and the per-show seat states."""

from datetime import datetime

from sqlalchemy import CHAR, BigInteger, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from regional_api.db import Base


class Show(Base):
    """One screening of a movie in a hall; scheduled shows never overlap in a hall."""

    __tablename__ = "shows"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    movie_id: Mapped[str] = mapped_column(ForeignKey("movies.id"))
    hall_id: Mapped[str] = mapped_column(ForeignKey("halls.id"))
    cinema_id: Mapped[str] = mapped_column(ForeignKey("cinemas.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(Text, server_default="scheduled")
    currency: Mapped[str] = mapped_column(CHAR(3))
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    canceled_at: Mapped[datetime | None]


class ShowPrice(Base):
    """The price of one seat type at one show, in minor units."""

    __tablename__ = "show_prices"

    show_id: Mapped[str] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), primary_key=True
    )
    seat_type: Mapped[str] = mapped_column(Text, primary_key=True)
    amount_minor: Mapped[int]


class ShowSeat(Base):
    """The state of one seat at one show: free, held, sold or blocked, and by which reservation."""

    __tablename__ = "show_seats"

    show_id: Mapped[str] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), primary_key=True
    )
    seat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("seats.id"), primary_key=True)
    seat_type: Mapped[str] = mapped_column(Text)
    price_minor: Mapped[int]
    status: Mapped[str] = mapped_column(Text, server_default="free")
    reservation_id: Mapped[str | None] = mapped_column(ForeignKey("reservations.id"))
    held_until: Mapped[datetime | None]
