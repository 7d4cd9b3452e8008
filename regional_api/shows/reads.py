"""The hot reads of a show (the show, its seat map): one dependency, the hot pool, the cache.

On a cache miss each runs one statement on the hot psycopg pool in autocommit (no session, no
pre-ping, no BEGIN/COMMIT): the show's state (`queries.show_state`), rendered with the show's
layout the replica keeps (two more statements the first time, `layouts.py`). A hit costs no
connection at all. `CachedReads` (fastpath.py) answers both before routing; the endpoints
answer the rest (errors, unknown ids).
"""

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import Depends, Request, Response, status

from common.db import Conn, HotPool
from common.errors import NotFound
from common.etag import etag_matches, etag_of
from regional_api.cinemas.service import require_local_id
from regional_api.clock import Clock
from regional_api.shows import queries
from regional_api.shows.cache import Entry, ShowCache
from regional_api.shows.layouts import Facts, Layouts, make_facts, make_layout


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
        return _found(await self.entry("show", show_id), show_id)

    async def seats(self, show_id: str) -> Entry:
        """The show's `ShowSeatMap` body (404 if there is no such show here)."""
        require_local_id(show_id, kind="show", region=self.region)
        return _found(await self.entry("seats", show_id), show_id)

    async def entry(self, kind: str, show_id: str) -> Entry | None:
        """The cached or new body of a show read or seat map (`kind`), None if no such show."""
        now = self.clock.now()
        return await self.cache.get((kind, show_id), now, partial(self._render, kind, show_id, now))

    async def _render(self, kind: str, show_id: str, now: datetime) -> tuple[bytes, str] | None:
        async with self.pool.connection() as conn:
            return await render(conn, self.cache.layouts, kind=kind, show_id=show_id, now=now)

    def answer(self, kind: str, entry: Entry, if_none_match: str | None) -> Response:
        """200 with the body, or 304 when If-None-Match names its ETag."""
        headers = {"ETag": entry.etag, "Cache-Control": "no-cache"}
        if etag_matches(if_none_match, entry.etag):
            self.cache.not_modified(kind)
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(entry.body, media_type="application/json", headers=headers)


async def render(
    conn: Conn, layouts: Layouts, *, kind: str, show_id: str, now: datetime
) -> tuple[bytes, str] | None:
    """A show read or seat map (`kind`) as of `now` and its ETag; None if there is no such show.

    One statement reads what may change; what does not is read too if `layouts` does not have
    it for the hall as it is now (the facts for a show read, the seats too for a seat map).
    """
    state = await queries.show_state(conn, show_id=show_id, now=now)
    if state is None:
        return None
    version = state.hall_changed_at
    facts = layouts.facts(show_id, version) or await _read_facts(conn, layouts, show_id)
    if facts is None:  # deleted since the state was read
        return None
    if kind == "seats":
        layout = layouts.layout(show_id, version)
        if layout is None:
            layout = make_layout(facts, await queries.layout_seats(conn, show_id=show_id))
            layouts.put(layout)
        return layout.seat_map(state)
    body = facts.show_read(state)
    return body, etag_of(body)


async def _read_facts(conn: Conn, layouts: Layouts, show_id: str) -> Facts | None:
    row = await queries.show_facts(conn, show_id=show_id)
    if row is None:
        return None
    facts = make_facts(row)
    layouts.put(facts)
    return facts


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
