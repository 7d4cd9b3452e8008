"""Payments and refunds."""

from datetime import datetime

from sqlalchemy import CHAR, BigInteger, ForeignKey, Identity, Text
from sqlalchemy.orm import Mapped, mapped_column

from regional_api.db import Base


class Payment(Base):
    """A payment attempt for a reservation through the payment provider."""

    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("reservations.id"))
    method: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(CHAR(3))
    provider_ref: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class Refund(Base):
    """Money returned for a canceled confirmed reservation."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("reservations.id"), unique=True)
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(CHAR(3))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
