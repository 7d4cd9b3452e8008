"""Users and their staff-to-cinema assignments."""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from global_api.db import Base


class User(Base):
    """A person who signs in: customer, box-office staff or chain admin."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text, server_default="customer")
    disabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class StaffCinema(Base):
    """A cinema a staff member works for."""

    __tablename__ = "staff_cinemas"

    user_id: Mapped[str] = mapped_column(
        Text, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    cinema_id: Mapped[str] = mapped_column(Text, ForeignKey("cinemas.id"), primary_key=True)
