"""The proxy's fast path: a bodyless GET relayed from parser callbacks, with no ASGI cycle.

At one connection, uvicorn's ASGI cycle, a task per request and an answer written in two parts
cost about as much as the router's own work (docs/benchmarks/router.md). The common case, a GET
to a healthy endpoint with a kept-alive connection and a short answer, needs none of them: this
path sends it from the request's parser callback and writes the whole answer in one piece from
the upstream's. Everything else, and anything that goes wrong, goes to `ProxyApp` (the ASGI
path, with a `Resume`), so retries, failover and streaming have one implementation.
"""

import asyncio
import json
import time
from typing import TYPE_CHECKING

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from common.observability import request_id_var
from router.proxy.app import RESUME, SMALL_BODY, ProxyApp, Resume
from router.proxy.headers import Inbound, response_headers
from router.proxy.resolve import Route, RouteNotFound, answered_by_router, resolve
from router.proxy.stats import STATS
from router.proxy.watch import Watcher
from router.upstreams.http1 import Connection, Response
from router.upstreams.pool import GLOBAL, Endpoint, RegionPool
from router.upstreams.send import Sent

if TYPE_CHECKING:
    from router.proxy.protocol import RouterProtocol

_ROUTES_KEPT = 4096  # distinct GET paths remembered; past it the cache starts afresh
_CUT_SHORT = json.dumps(
    {"error": "upstream_failed", "detail": "the upstream answer was cut short"}
).encode()
_CUT_SHORT_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_CUT_SHORT)).encode()),
]


class FastPath:
    """Starts fast exchanges for the requests that qualify."""

    def __init__(self, proxy: ProxyApp) -> None:
        self.proxy = proxy
        settings = proxy.settings
        self.watches = proxy.watches
        self.attempt_timeout = min(
            settings.attempt_timeout_seconds, settings.request_deadline_seconds
        )
        # path -> (region, length of a /regions/{region} prefix), valid for one cinema map.
        self._routes: dict[str, tuple[str | None, int]] = {}
        self._routes_for: dict[str, str] | None = None
        self._defaults: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")

    def route(self, path: str, target: str) -> Route | None:
        """Where the GET of `path` (sent upstream as `target`) goes; None if resolve refuses it."""
        proxy = self.proxy
        cinemas = proxy.directory.cinema_regions
        if cinemas is not self._routes_for:
            self._routes.clear()
            self._routes_for = cinemas
        known = self._routes.get(path)
        if known is None:
            try:
                route = resolve(path, path, regions=proxy.upstreams.regions, cinema_regions=cinemas)
            except RouteNotFound:
                return None  # a 404, or a map refresh first: both are the ASGI path's
            if len(self._routes) >= _ROUTES_KEPT:
                self._routes.clear()
            known = self._routes[path] = (route.region, len(path) - len(route.path))
        region, prefix = known
        return Route(region, target[prefix:])

    def default_headers(self, protocol: "RouterProtocol") -> bytes:
        """uvicorn's `date` and `server` headers, encoded once per second."""
        current = protocol.server_state.default_headers  # a new list every second
        seen, encoded = self._defaults
        if current is not seen:
            encoded = b"".join(name + b": " + value + b"\r\n" for name, value in current)
            self._defaults = (current, encoded)
        return encoded

    def start(
        self, protocol: "RouterProtocol", scope: Scope, inbound: Inbound, keep_alive: bool
    ) -> "Exchange | Watcher | None":
        """Send the GET in `scope` upstream now (or hold a watch), or None for the ASGI path."""
        path: str = scope["path"]
        if answered_by_router(path):
            return None
        query: bytes = scope["query_string"]
        route = self.route(path, f"{path}?{query.decode('latin-1')}" if query else path)
        if route is None:
            return None
        proxy = self.proxy
        pool = proxy.pool(route)
        if pool is None:
            return None  # the region is leaving the map
        if path.endswith("/line/watch"):
            return self.watches.start(protocol, scope, route, keep_alive)
        sender = proxy.sender
        if pool.line.ahead_of(False):
            return None  # others wait for a slot: the ASGI path queues behind them
        endpoint = pool.pick(None, sender.cap)
        if endpoint is None:
            return None
        conn = endpoint.client.take_idle()
        if conn is None:
            return None
        sender.budget(pool.code).request()
        endpoint.take()
        exchange = Exchange(self, protocol, scope, route, inbound, pool, endpoint, conn, keep_alive)
        conn.send(
            endpoint.client.encode("GET", route.path, inbound.forward, None),
            head=False,
            listener=exchange,
        )
        exchange.timer = conn.loop.call_later(self.attempt_timeout, exchange.time_out)
        return exchange


class Exchange:
    """One fast request: the protocol's current cycle, and the listener of its upstream answer."""

    __slots__ = (
        "conn",
        "deadline",
        "disconnected",
        "endpoint",
        "fast",
        "inbound",
        "keep_alive",
        "pool",
        "protocol",
        "response_complete",
        "route",
        "scope",
        "started",
        "timer",
    )

    def __init__(
        self,
        fast: FastPath,
        protocol: "RouterProtocol",
        scope: Scope,
        route: Route,
        inbound: Inbound,
        pool: RegionPool,
        endpoint: Endpoint,
        conn: Connection,
        keep_alive: bool,
    ) -> None:
        self.started = time.perf_counter()
        self.deadline = fast.proxy.deadline()
        self.fast = fast
        self.protocol = protocol
        self.scope = scope
        self.route = route
        self.inbound = inbound
        self.pool = pool
        self.endpoint = endpoint
        self.conn = conn
        self.timer: asyncio.TimerHandle | None = None
        # What uvicorn's HttpToolsProtocol reads and writes on its current cycle.
        self.response_complete = False
        self.keep_alive = keep_alive
        self.disconnected = False

    def time_out(self) -> None:
        """The answer took longer than an attempt may."""
        if self.conn.headed:
            self.conn.time_out_body()
        else:
            self.conn.time_out()

    # Listener callbacks (router.upstreams.http1)

    def on_head(self, conn: Connection) -> None:
        """Keep a short framed answer for one write; hand a long or unframed one to ProxyApp."""
        self.fast.proxy.sender.answered(self.endpoint, self.pool, conn.status)
        length = conn.content_length
        if conn.status in (204, 304) or (length is not None and length <= SMALL_BODY):
            return
        self._detach()
        self._hand_over(sent=Sent(Response(conn, self.endpoint.client), self.endpoint))

    def on_done(self, conn: Connection) -> None:
        """Write the whole answer at once, then give the connection back."""
        self._detach()
        status = conn.status
        chunks = conn.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._write(self._head(status, conn.raw_headers) + body)
        self.endpoint.release()
        self.endpoint.client.give_back(conn, reusable=conn.keep_alive and not conn.closed)
        self._finish(status, "ok" if status < 500 else "upstream_5xx")

    def on_fail(self, conn: Connection, error: Exception) -> None:
        """Before the answer: let ProxyApp retry it. Midway: a 502, as ProxyApp would answer."""
        self._detach()
        self.endpoint.client.give_back(conn, reusable=False)
        if not conn.headed:
            self.fast.proxy.sender.attempt_failed(self.endpoint, self.pool, error)
            self._hand_over(error=error)
            return
        self.endpoint.release()
        self._write(self._head(502, _CUT_SHORT_HEADERS) + _CUT_SHORT)
        self._finish(502, "upstream_failed")

    # Protocol callbacks (router.proxy.protocol)

    def client_gone(self) -> None:
        """The client hung up: finish reading the answer, write nothing."""
        self.disconnected = True

    # Internals

    def _detach(self) -> None:
        self.conn.listener = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _head(self, status: int, raw_headers: list[tuple[bytes, bytes]]) -> bytes:
        headers = response_headers(raw_headers, self.inbound.request_id)
        return b"".join(
            (
                STATUS_LINE.get(status) or b"HTTP/1.1 %d \r\n" % status,
                self.fast.default_headers(self.protocol),
                *(name + b": " + value + b"\r\n" for name, value in headers),
                b"\r\n" if self.keep_alive else b"connection: close\r\n\r\n",
            )
        )

    def _write(self, data: bytes) -> None:
        transport = self.protocol.transport
        if not self.disconnected and not transport.is_closing():
            transport.write(data)

    def _finish(self, status: int, outcome: str) -> None:
        protocol = self.protocol
        self.response_complete = True
        if not self.keep_alive:
            protocol.transport.close()
        STATS.fast["answered"] += 1
        if self.disconnected:
            outcome = "client_gone"
        request_id = self.inbound.request_id
        region = self.route.region or GLOBAL
        token = request_id_var.set(request_id)
        try:
            self.fast.proxy.observe(
                "GET", self.scope["path"], request_id, region, (outcome, status), self.started
            )
        finally:
            request_id_var.reset(token)
        protocol.on_response_complete()

    def _hand_over(self, *, sent: Sent | None = None, error: Exception | None = None) -> None:
        resume = Resume(
            started=self.started,
            deadline=self.deadline,
            route=self.route,
            inbound=self.inbound,
            endpoint=self.endpoint,
            sent=sent,
            error=error,
        )
        self.scope[RESUME] = resume
        STATS.fast["resumed"] += 1
        self.protocol.resume(self)
