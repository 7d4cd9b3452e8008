"""The rendered directory map, kept in memory until the version changes."""

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from global_api.directory.service import render_map


@dataclass
class MapCache:
    """The last rendered map body and its version."""

    version: str | None = None
    body: bytes = b""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, session: AsyncSession, *, version: str) -> tuple[str, bytes]:
        """(version, JSON body) at least as new as `version`; renders only when it moved."""
        if version == self.version:
            return version, self.body
        async with self._lock:
            if version != self.version:
                rendered = await render_map(session)
                self.version, self.body = rendered.version, rendered.model_dump_json().encode()
            return self.version or version, self.body
