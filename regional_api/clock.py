"""The clock the booking rules read; tests move it instead of sleeping."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request


class Clock:
    """Wall-clock UTC time plus an adjustable offset."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (tests only)."""
        self.offset += delta


# async on purpose: FastAPI runs a plain `def` dependency in its threadpool (a costly hop).
async def get_clock(request: Request) -> Clock:
    """The app's clock."""
    clock: Clock = request.app.state.clock
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]
