"""The trusted-key cache of global_api's own verifier, filled from its database (no HTTP)."""

import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.auth import JwksCache
from global_api.tokens.keys import published_jwks


class DatabaseJwks(JwksCache):
    """A JwksCache that reloads the published keys from the database instead of over HTTP."""

    def __init__(self, *, retired_grace_seconds: int, min_refetch_seconds: float = 1.0) -> None:
        super().__init__(None, min_refetch_seconds=min_refetch_seconds)
        self.retired_grace_seconds = retired_grace_seconds
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None

    async def reload(self) -> None:
        """Load the published keys now (startup, rotation, periodic sync)."""
        if self.sessionmaker is None:
            return
        async with self.sessionmaker() as session:
            document = await published_jwks(
                session, retired_grace_seconds=self.retired_grace_seconds
            )
        self.load(document)

    async def refresh(self, *, force: bool = False) -> bool:
        """On an unknown kid: reload, at most once per `min_refetch_seconds` unless forced."""
        async with self._lock:
            if not force and time.monotonic() - self._last_fetch < self.min_refetch_seconds:
                return False
            self._last_fetch = time.monotonic()
            await self.reload()
            return True
