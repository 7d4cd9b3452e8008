"""The cinemas of this region, mirrored from the global directory."""

from datetime import datetime

from sqlalchemy import Text
from sqlalchemy.orm import Mapped, mapped_column

from regional_api.db import Base


class Cinema(Base):
    """A cinema of this region, mirrored from the global directory."""

    __tablename__ = "cinemas"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text, server_default="")
    timezone: Mapped[str] = mapped_column(Text)
    synced_at: Mapped[datetime] = mapped_column(server_default="now()")
