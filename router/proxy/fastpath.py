"""The proxy's fast path: GETs and small POSTs relayed from parser callbacks, with no ASGI cycle.

At one connection, uvicorn's ASGI cycle, a task per request and an answer written in two parts
cost about as much as the router's own work (docs/benchmarks/router.md). The common case, a GET
or a small POST (a hold, a payment) to a healthy endpoint with a kept-alive connection and a
short answer, needs none of them: this path sends it from the request's parser callbacks (a
POST once its body is in, request and body in one write) and writes the whole answer in one
piece from the upstream's. Everything else goes to `ProxyApp` (the ASGI path, with a `Resume`),
so queueing, retries, failover and streaming have one implementation. A POST is handed over
only while none of it was sent, or when its failed attempt may be repeated (`may_retry`: a
keyed write); an unkeyed POST that may have reached the upstream is answered here, never resent.
"""

import asyncio
import json
import time
from typing import TYPE_CHECKING

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from common.observability import request_id_var
from common.priority import finishes_sale, pays
from router.proxy.app import (
    RESUME,
    SMALL_BODY,
    ProxyApp,
    ProxyError,
    Resume,
    json_answer,
    upstream_failed,
)
from router.proxy.headers import Inbound, response_headers
from router.proxy.resolve import Route, RouteNotFound, answered_by_router, resolve
from router.proxy.stats import STATS
from router.proxy.watchers import Watcher
from router.upstreams.http1 import Connection, Response
from router.upstreams.pool import GLOBAL, Endpoint, RegionPool
from router.upstreams.send import Outbound, Sent, UpstreamFailed, as_failure

if TYPE_CHECKING:
    from router.proxy.protocol import RouterProtocol

_ROUTES_KEPT = 4096  # distinct GET paths remembered; past it the cache starts afresh
# A POST body up to this size is buffered from the parser's callbacks whole, with no flow
# control (holds and payments are a few hundred bytes); a larger one takes the ASGI path.
FAST_BODY = 64 * 1024
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
        self.max_body = min(FAST_BODY, settings.max_body_bytes)  # past it: the 413 is ProxyApp's
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
        if path.endswith("/line/watch") and scope["method"] == "GET":
            return self.watches.start(protocol, scope, route, keep_alive)
        if path.endswith("/line") and proxy.sold_out.answers(scope["method"], route):
            return None  # the router answers it (router.proxy.soldout), on the ASGI path
        exchange = Exchange(self, protocol, scope, route, inbound, pool, keep_alive)
        if exchange.reading:
            return exchange  # a POST: sent once its body is in (`Exchange.body_done`)
        return exchange if exchange.send() else None


class Exchange:
    """One fast request: the protocol's current cycle, and the listener of its upstream answer."""

    __slots__ = (
        "body",
        "chunks",
        "conn",
        "deadline",
        "disconnected",
        "endpoint",
        "fast",
        "inbound",
        "keep_alive",
        "payment",
        "pool",
        "priority",
        "protocol",
        "reading",
        "response_complete",
        "response_started",
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
        self.reading = scope["method"] == "POST"  # its body is still coming in
        self.chunks: list[bytes] = []
        self.body: bytes | None = None
        self.priority = False
        self.payment = False
        self.endpoint: Endpoint | None = None
        self.conn: Connection | None = None
        self.timer: asyncio.TimerHandle | None = None
        # What uvicorn's HttpToolsProtocol (and router.proxy.bounds) reads and writes on its
        # current cycle.
        self.response_complete = False
        self.response_started = False
        self.keep_alive = keep_alive
        self.disconnected = False

    def send(self) -> bool:
        """Write the request on an idle connection to an endpoint under its cap; False if none."""
        pool = self.pool
        sender = self.fast.proxy.sender
        payment = self.payment
        if pool.line_of(payment).ahead_of(self.priority):
            return False  # others wait for a slot: the ASGI path queues behind them
        cap = sender.payment_cap if payment else sender.cap
        endpoint = pool.pick(None, cap, payment)
        if endpoint is None:
            return False
        conn = endpoint.client.take_idle()
        if conn is None:
            # Among equals `pick` takes turns, and ProxyApp's pick would take the next turn:
            # unless it is asked here, that endpoint's idle connections are never found.
            endpoint = pool.pick([endpoint], cap, payment)
            conn = endpoint.client.take_idle() if endpoint is not None else None
            if endpoint is None or conn is None:
                return False
        sender.budget(pool.code).request()
        endpoint.take(payment)
        self.endpoint, self.conn = endpoint, conn
        method: str = self.scope["method"]
        request = endpoint.client.encode(method, self.route.path, self.inbound.forward, self.body)
        conn.send(request, head=False, listener=self)
        self.timer = conn.loop.call_later(self.fast.attempt_timeout, self.time_out)
        return True

    def time_out(self) -> None:
        """The answer took longer than an attempt may."""
        assert self.conn is not None  # the timer is set when the request is sent
        if self.conn.headed:
            self.conn.time_out_body()
        else:
            self.conn.time_out()

    # Listener callbacks (router.upstreams.http1)

    def on_head(self, conn: Connection) -> None:
        """Keep a short framed answer for one write; hand a long or unframed one to ProxyApp."""
        endpoint = self.endpoint
        assert endpoint is not None  # an answer comes to a sent request
        self.fast.proxy.sender.answered(endpoint, self.pool, conn.status)
        length = conn.content_length
        if conn.status in (204, 304) or (length is not None and length <= SMALL_BODY):
            return
        self._detach()
        self._hand_over(sent=Sent(Response(conn, endpoint.client), endpoint, self.payment))

    def on_done(self, conn: Connection) -> None:
        """Write the whole answer at once, then give the connection back."""
        endpoint = self.endpoint
        assert endpoint is not None
        self._detach()
        status = conn.status
        chunks = conn.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._write(self._head(status, conn.raw_headers) + body)
        endpoint.release(self.payment)
        endpoint.client.give_back(conn, reusable=conn.keep_alive and not conn.closed)
        self._finish(status, "ok" if status < 500 else "upstream_5xx")

    def on_fail(self, conn: Connection, error: Exception) -> None:
        """Before the answer: ProxyApp retries it if `may_retry` allows. Midway: a 502."""
        endpoint = self.endpoint
        assert endpoint is not None
        self._detach()
        endpoint.client.give_back(conn, reusable=False)
        if not conn.headed:
            self.fast.proxy.sender.attempt_failed(endpoint, self.pool, error, payment=self.payment)
            outbound = self._outbound()
            if outbound.may_retry(error):
                self._hand_over(outbound, error=error)
            else:  # it may have reached the upstream: answered as ProxyApp would, never resent
                self._answer(upstream_failed(self._failure(error)))
            return
        endpoint.release(self.payment)
        self._write(self._head(502, _CUT_SHORT_HEADERS) + _CUT_SHORT)
        self._finish(502, "upstream_failed")

    # Protocol callbacks (router.proxy.protocol)

    def body_part(self, data: bytes) -> None:
        """Buffer a piece of a POST's body (its length was checked against `max_body`)."""
        self.chunks.append(data)

    def body_done(self) -> None:
        """The whole POST is in: apply the rate limit, then send it or hand it to ProxyApp."""
        if not self.reading:
            return  # a GET, sent already
        self.reading = False
        chunks = self.chunks
        self.body = (chunks[0] if len(chunks) == 1 else b"".join(chunks)) if chunks else None
        proxy = self.fast.proxy
        try:
            proxy.limit("POST", self.route, self.inbound.client)
        except ProxyError as refused:
            # Not from inside the parser's callback: a pipelined request may follow in this read.
            self.protocol.loop.call_soon(self._answer, refused)
            return
        self.deadline = proxy.deadline()  # from the end of the body, as on the ASGI path
        path: str = self.scope["path"]
        self.payment = pays("POST", path)
        self.priority = self.payment or finishes_sale("POST", path, self.scope["headers"])
        if not self.send():
            self._hand_over()  # nothing sent: ProxyApp waits in the region's line, or refuses

    def client_gone(self) -> None:
        """The client hung up: finish reading the answer, write nothing."""
        self.disconnected = True
        if self.reading:  # mid-body: nothing was sent, nothing more will come
            self.reading = False
            self.response_complete = True
            self._record(400, "client_gone")

    # Internals

    def _outbound(self) -> Outbound:
        proxy = self.fast.proxy
        return proxy.outbound(self.scope, self.route, self.inbound, self.body, self.deadline)

    def _failure(self, error: Exception) -> UpstreamFailed:
        failure = as_failure(self.pool.code, error)
        if isinstance(failure, UpstreamFailed):
            return failure
        return UpstreamFailed(self.pool.code, "connection")  # on_fail only hears of I/O errors

    def _detach(self) -> None:
        assert self.conn is not None
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

    def _answer(self, refusal: ProxyError) -> None:
        """Answer with an error of the router's own, as ProxyApp words it."""
        headers, payload = json_answer(refusal.body, refusal.headers, self.inbound.request_id)
        self._write(self._head(refusal.status, headers) + payload)
        self._finish(refusal.status, str(refusal.body["error"]))

    def _finish(self, status: int, outcome: str) -> None:
        protocol = self.protocol
        self.response_complete = True
        if not self.keep_alive:
            protocol.transport.close()
        STATS.fast["answered"] += 1
        self._record(status, "client_gone" if self.disconnected else outcome)
        protocol.on_response_complete()

    def _record(self, status: int, outcome: str) -> None:
        request_id = self.inbound.request_id
        region = self.route.region or GLOBAL
        scope = self.scope
        token = request_id_var.set(request_id)
        try:
            self.fast.proxy.observe(
                scope["method"], scope["path"], request_id, region, (outcome, status), self.started
            )
        finally:
            request_id_var.reset(token)

    def _hand_over(
        self,
        outbound: Outbound | None = None,
        *,
        sent: Sent | None = None,
        error: Exception | None = None,
    ) -> None:
        resume = Resume(
            started=self.started,
            route=self.route,
            inbound=self.inbound,
            outbound=outbound or self._outbound(),
            endpoint=self.endpoint,
            sent=sent,
            error=error,
        )
        self.scope[RESUME] = resume
        STATS.fast["resumed"] += 1
        self.protocol.resume(self)
