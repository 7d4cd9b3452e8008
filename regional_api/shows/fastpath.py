"""Cached show reads answered before routing: a hit costs no route match, dependency or model.

Under an on-sale's polls most reads are hits, and FastAPI's routing, dependency solving and
parameter validation cost more than the answer (docs/benchmarks/reads.md). This ASGI
middleware sits inside the observability and admission middleware (so a hit is still admitted,
counted under its route and logged) and answers a GET of `/shows/{id}` or `/shows/{id}/seats`
whose cache entry is fresh: 200 with the stored body, or 304. Anything else (a miss, a foreign
or malformed id, an If-None-Match too long to accept) goes on to the endpoints in
`regional_api/shows/router.py`, which fill the cache and answer every error.
"""

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from common.etag import etag_matches
from regional_api.clock import Clock
from regional_api.shows.cache import Entry, ShowCache

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
    """Pure ASGI middleware: answer fresh cache hits of show reads; pass everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry, kind, condition = self._hit(scope)
        if entry is None:
            await self.app(scope, receive, send)
            return
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

    def _hit(self, scope: Scope) -> tuple[Entry | None, str, str | None]:
        """The fresh entry the request asks for, its kind and If-None-Match, if it can be served."""
        if scope["type"] != "http" or scope["method"] != "GET" or "app" not in scope:
            return None, "", None
        target = _target(scope["path"])  # only ids the endpoints accepted are ever cached
        if target is None:
            return None, "", None
        raw = _if_none_match(scope)
        if raw is not None and len(raw) > MAX_IF_NONE_MATCH:
            return None, "", None
        # The app's state, read per request: tests give an app another clock after it starts.
        state = scope["app"].state
        cache: ShowCache = state.show_cache
        clock: Clock = state.clock
        entry = cache.fresh(target, clock.now())
        return entry, target[0], None if raw is None else raw.decode("latin-1")
