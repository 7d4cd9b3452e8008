"""Recent failed logins, for throttling."""

from datetime import datetime

from sqlalchemy import DateTime, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from global_api.db import Base


class LoginFailure(Base):
    """Timestamps of recent failed logins for one account or client address."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[list[datetime]] = mapped_column(ARRAY(DateTime(timezone=True)))
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")
