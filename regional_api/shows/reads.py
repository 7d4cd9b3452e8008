"""The hot reads of a show (the show, its seat map): one dependency, the hot pool, the cache.

Each runs one statement on the hot psycopg pool in autocommit (no session, no pre-ping, no
BEGIN/COMMIT), and only on a cache miss; a hit costs no connection at all.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response, status

from common.db import HotPool
from common.errors import NotFound
from common.etag import etag_matches
from regional_api.cinemas.service import require_local_id
from regional_api.clock import Clock
from regional_api.shows import queries
from regional_api.shows.cache import Entry, ShowCache
from schemas.catalog import ShowRead


@dataclass(frozen=True, slots=True)
class ShowReads:
    """What a hot read needs: the region, the clock, the hot pool and the replica's cache."""

    region: str
    clock: Clock
    pool: HotPool
    cache: ShowCache

    async def show(self, show_id: str) -> Entry:
        """The show's `ShowRead` body (404 if there is no such show here)."""
        require_local_id(show_id, kind="show", region=self.region)
        now = self.clock.now()

        async def load() -> bytes | None:
            async with self.pool.connection() as conn:
                item = await queries.read_show(conn, show_id=show_id, now=now)
            # The bytes FastAPI would send for the model (pydantic's dump_json, by alias).
            return (
                None if item is None else ShowRead.model_validate(item).model_dump_json().encode()
            )

        return _found(await self.cache.get(("show", show_id), now, load), show_id)

    async def seats(self, show_id: str) -> Entry:
        """The show's `ShowSeatMap` body (404 if there is no such show here)."""
        require_local_id(show_id, kind="show", region=self.region)
        now = self.clock.now()

        async def load() -> bytes | None:
            async with self.pool.connection() as conn:
                document = await queries.seat_map_json(conn, show_id=show_id, now=now)
            return None if document is None else document.encode()

        return _found(await self.cache.get(("seats", show_id), now, load), show_id)

    def answer(self, kind: str, entry: Entry, if_none_match: str | None) -> Response:
        """200 with the body, or 304 when If-None-Match names its ETag."""
        headers = {"ETag": entry.etag, "Cache-Control": "no-cache"}
        if etag_matches(if_none_match, entry.etag):
            self.cache.not_modified(kind)
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(entry.body, media_type="application/json", headers=headers)


def _found(entry: Entry | None, show_id: str) -> Entry:
    if entry is None:
        raise NotFound(f"no show {show_id}", code="show_not_found")
    return entry


# async on purpose: FastAPI runs a plain `def` dependency in its threadpool (a costly hop).
async def get_show_reads(request: Request) -> ShowReads:
    """The app's hot-read context (one dependency instead of four)."""
    state = request.app.state
    return ShowReads(state.settings.region, state.clock, state.pool, state.show_cache)


ShowReadsDep = Annotated[ShowReads, Depends(get_show_reads)]
