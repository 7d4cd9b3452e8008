"""Background tidying: mark lapsed holds expired and free their seat rows.

Correctness never depends on it: a lapsed hold already counts as free by the availability rule.
"""

import asyncio
import logging

from fastapi import FastAPI

from regional_api.clock import Clock
from regional_api.config import RegionalSettings
from regional_api.reservations.full_shows import FullShows
from regional_api.reservations.service import expire_lapsed_holds

log = logging.getLogger("reservations.sweeper")

BATCH = 500


async def sweep_once(app: FastAPI) -> int:
    """Expire lapsed holds in batches until none is left; return how many were expired."""
    clock: Clock = app.state.clock
    full: FullShows = app.state.full_shows
    total = 0
    while True:
        async with app.state.sessionmaker() as session:
            expired = await expire_lapsed_holds(session, now=clock.now(), limit=BATCH, full=full)
            await session.commit()
        total += expired
        if expired < BATCH:
            return total


async def run(app: FastAPI) -> None:
    """Sweep every `sweeper_interval_seconds`, surviving database outages."""
    settings: RegionalSettings = app.state.settings
    while True:
        await asyncio.sleep(settings.sweeper_interval_seconds)
        try:
            expired = await sweep_once(app)
        except Exception as exc:  # the database may be down: try again next round
            log.warning("sweep failed", extra={"fields": {"error": type(exc).__name__}})
            continue
        if expired:
            log.info("holds expired", extra={"fields": {"count": expired}})
