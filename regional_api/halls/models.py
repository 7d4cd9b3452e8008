"""Halls and their seats."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from regional_api.db import Base


class Hall(Base):
    """A screening room with its seat map, built from a layout document."""

    __tablename__ = "halls"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    cinema_id: Mapped[str] = mapped_column(ForeignKey("cinemas.id"))
    name: Mapped[str] = mapped_column(Text)
    layout: Mapped[dict[str, Any]] = mapped_column(JSONB)
    seat_count: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class Seat(Base):
    """One seat of a hall, with its grid position for drawing aisles and gaps."""

    __tablename__ = "seats"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    hall_id: Mapped[str] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"))
    row_label: Mapped[str] = mapped_column(Text)
    number: Mapped[int]
    label: Mapped[str] = mapped_column(Text)
    grid_row: Mapped[int]
    grid_col: Mapped[int]
    seat_type: Mapped[str] = mapped_column(Text)
    blocked: Mapped[bool] = mapped_column(server_default="false")
    # Set when a layout replacement removed the seat while past shows still reference it.
    retired_at: Mapped[datetime | None]
