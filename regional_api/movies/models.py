"""Movies of the regional catalog."""

from datetime import datetime

from sqlalchemy import ARRAY, Text
from sqlalchemy.orm import Mapped, mapped_column

from regional_api.db import Base


class Movie(Base):
    """A film in this region's catalog."""

    __tablename__ = "movies"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    genres: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    duration_minutes: Mapped[int]
    age_rating: Mapped[str] = mapped_column(Text, server_default="")
    poster_url: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
