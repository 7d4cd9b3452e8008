"""Regions, cinemas and the directory version counter."""

from datetime import datetime

from sqlalchemy import CHAR, BigInteger, Boolean, ForeignKey, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from global_api.db import Base


class Region(Base):
    """A region of the chain and the base URLs of its regional_api endpoints."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(CHAR(3))
    endpoints: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class Cinema(Base):
    """A cinema; its id carries its region."""

    __tablename__ = "cinemas"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text, server_default="")
    timezone: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(Text, ForeignKey("regions.code"))
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class DirectoryVersion(Base):
    """The single row whose counter every directory write bumps (by trigger)."""

    __tablename__ = "directory_version"

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    epoch: Mapped[str] = mapped_column(Text)
    counter: Mapped[int] = mapped_column(BigInteger, server_default="1")
