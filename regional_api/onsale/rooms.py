"""Which shows have a waiting room, as one replica knows it (refreshed every second).

The hold path asks this set with no database round trip; an on-sale announced or dropped takes
effect on every replica within `REFRESH_SECONDS`. The passes' secret is loaded once.
"""

import asyncio
import logging

from common.db import HotPool, fetch, fetch_one
from regional_api.onsale import statements as sql

log = logging.getLogger("onsale.rooms")

REFRESH_SECONDS = 1.0


class WaitingRooms:
    """The shows whose holds need an admission pass, and the secret passes are signed with."""

    def __init__(self) -> None:
        self.shows: frozenset[str] = frozenset()
        self.secret = b""

    async def load(self, pool: HotPool) -> None:
        """Read the set (and the secret, the first time)."""
        async with pool.connection() as conn:
            rows = await fetch(conn, sql.WAITING_ROOMS)
            if not self.secret:
                row = await fetch_one(conn, sql.SECRET)
                self.secret = row.secret.encode()
        self.shows = frozenset(row.show_id for row in rows)

    async def refresh_forever(self, pool: HotPool) -> None:
        """Keep the set fresh, surviving database outages."""
        while True:
            try:
                await self.load(pool)
            except Exception as exc:  # the database may be down: keep the last set
                log.warning("waiting rooms not refreshed", extra={"fields": {"error": repr(exc)}})
            await asyncio.sleep(REFRESH_SECONDS)
