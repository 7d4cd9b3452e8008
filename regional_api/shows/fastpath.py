"""Show reads answered before routing: no route match, dependency or model for a show read.

FastAPI's routing, dependency solving and parameter validation cost more than a cached answer,
and about a third of an uncached one (docs/benchmarks/reads.md). This ASGI middleware sits
inside the observability and admission middleware (so a read is still admitted, counted under
its route and logged) and answers a GET of `/shows/{id}` or `/shows/{id}/seats` of a show of
this region: from a fresh cache entry, or from the one it loads (`ShowReads.entry`, the same as
the endpoints'), 200 with the body or 304. Anything else (a malformed or foreign id, no such
show, an If-None-Match too long to accept, a database error) goes on to the endpoints in
`regional_api/shows/router.py`, which answer every error.
"""

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from common.etag import etag_matches
from common.ids import is_local
from regional_api.shows.cache import Entry
from regional_api.shows.reads import ShowReads

MAX_IF_NONE_MATCH = 1024  # the endpoints' limit: a longer header gets their 422
_HEAD = (b"content-type", b"application/json")
_NO_CACHE = (b"cache-control", b"no-cache")


@dataclass(frozen=True, slots=True)
class _Route:
    """What the observability middleware reads of a matched route: its template."""

    path: str


_ROUTES = {"show": _Route("/shows/{show_id}"), "seats": _Route("/shows/{show_id}/seats")}


def _target(path: str) -> tuple[str, str] | None:
    """(kind, show id) of a show or seat-map path, else None."""
    parts = path.split("/")
    if len(parts) == 3 and parts[1] == "shows":
        return "show", parts[2]
    if len(parts) == 4 and parts[1] == "shows" and parts[3] == "seats":
        return "seats", parts[2]
    return None


def _if_none_match(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return bytes(value)
    return None


class CachedReads:
    """Pure ASGI middleware: answer show reads of this region's shows; pass everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = _read(scope)
        entry = None if read is None else await _entry(scope, read[0], read[1])
        if read is None or entry is None:
            await self.app(scope, receive, send)
            return
        kind, _, condition = read
        scope["route"] = _ROUTES[kind]
        headers = [(b"etag", entry.etag.encode()), _NO_CACHE]
        if etag_matches(condition, entry.etag):
            scope["app"].state.show_cache.not_modified(kind)
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-length", str(len(entry.body)).encode()), _HEAD]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": entry.body})


def _read(scope: Scope) -> tuple[str, str, str | None] | None:
    """(kind, show id, If-None-Match) of a show read this middleware answers, else None."""
    if scope["type"] != "http" or scope["method"] != "GET" or "app" not in scope:
        return None
    target = _target(scope["path"])
    if target is None:
        return None
    raw = _if_none_match(scope)
    if raw is not None and len(raw) > MAX_IF_NONE_MATCH:
        return None
    return target[0], target[1], None if raw is None else raw.decode("latin-1")


async def _entry(scope: Scope, kind: str, show_id: str) -> Entry | None:
    """The body to answer with: a fresh hit, else loaded; None for the endpoints to answer."""
    # The app's state, read per request: tests give an app another clock after it starts.
    state = scope["app"].state
    entry: Entry | None = state.show_cache.fresh((kind, show_id), state.clock.now())
    if entry is not None:  # only ids the endpoints accepted are ever cached
        return entry
    reads = ShowReads(state.settings.region, state.clock, state.pool, state.show_cache)
    if not is_local(show_id, "show", reads.region):
        return None
    try:
        return await reads.entry(kind, show_id)
    except Exception:  # the endpoint reads again and renders the error
        return None
