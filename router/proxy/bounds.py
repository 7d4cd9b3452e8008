"""uvicorn's httptools protocol with a deadline on every phase of a connection and caps on it.

A connection is reading a request's headers (from its first byte, or from the connect), its
body (a deadline pushed back by every byte at the minimum rate), idle between requests
(uvicorn's keep-alive timer) or writing an answer (a client that lets the transport's buffer
stay full past the write deadline is cut off). Header bytes and count, pipelined requests and
connections per peer address are capped. The bounds come from `router.proxy.door.FrontDoor`.
"""

import asyncio
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from router.config import RouterSettings
from router.main import RouterApp
from router.proxy.app import CLIENT_GONE
from router.proxy.door import CONNECTIONS, FrontDoor, Refusal

IDLE, HEAD, BODY = 0, 1, 2


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request the router refuses."""


class BoundedProtocol(HttpToolsProtocol):
    """Closes connections that overstay a phase's deadline or go past a cap."""

    # uvicorn's ~28 attributes fit a shared-key instance dict (up to 30 keys); these on top
    # would give every connection a dict of its own, 1.6 KiB more (docs/benchmarks/onsale-line.md).
    __slots__ = (
        "_began",
        "_counted",
        "_deadline",
        "_head_bytes",
        "_partial",
        "_peer",
        "_phase",
        "_refusal",
        "_timer",
        "_timer_phase",
        "_write_timer",
        "door",
        "router_app",
        "running",
        "trusted",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.router_app: RouterApp | None = None
        self.trusted: Any = None  # the proxy-headers middleware's trusted hosts, if it runs
        app: Any = self.app
        while app is not None:
            if isinstance(app, ProxyHeadersMiddleware):
                self.trusted = app.trusted_hosts
            if isinstance(app, RouterApp):
                self.router_app = app
                break
            app = getattr(app, "app", None)
        door = self.router_app.door if self.router_app is not None else None
        self.door: FrontDoor = door or FrontDoor(RouterSettings())
        self.timeout_keep_alive = self.door.keepalive  # type: ignore[assignment]  # int in uvicorn
        self.running: RequestResponseCycle | None = None  # the request whose answer comes next
        self._counted = False  # in router_client_connections
        self._peer: str | None = None  # the address counted against the per-client cap
        self._phase = IDLE
        self._began = False  # a request began in the data being parsed
        self._head_bytes = 0  # request line and complete headers of the current request
        self._partial = 0  # bytes of reads that fell wholly inside the current head
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase = IDLE
        self._deadline = 0.0
        self._write_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[str, Refusal | None] | None = None

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        CONNECTIONS.inc()
        self._counted = True
        client = self.client[0] if self.client else None
        if client is not None and not self._is_proxy(client):
            if not self.door.admit(client):
                self._close("client_connection_limit", self.door.crowded)
                return
            self._peer = client
        self._arm(HEAD, self.door.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        running = self.running
        if isinstance(running, RequestResponseCycle) and not running.response_complete:
            # uvicorn only tells the last request parsed; a pipelined one may be answering.
            running.scope[CLIENT_GONE] = True  # type: ignore[literal-required]
            running.disconnected = True
            running.message_event.set()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._began = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._forget()  # the WebSocket protocol owns the connection from here
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._close(*self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        self._after_read(len(data))

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self.door.closed("idle_timeout")
        super().timeout_keep_alive_handler()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.door.write_timeout, self._write_expired)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = HEAD
        self._began = True
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._grow(len(name) + len(value) + 4)
        if len(self.headers) > self.door.max_header_count:
            self._refuse("too_many_headers", self.door.too_many)

    def on_headers_complete(self) -> None:
        self._phase = BODY
        if len(self.pipeline) >= self.door.max_pipelined:
            self._refuse("pipeline_full", None)
        self.dispatch()

    def dispatch(self) -> None:
        """Start the request whose headers are complete (uvicorn queues it behind a running one)."""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.message_done()
        super().on_message_complete()

    def message_done(self) -> None:
        """The request has been read whole: no read deadline until the next one begins."""
        self._phase = IDLE

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self.running = cycle
        super()._start_asgi_task(cycle, app)

    # Internals

    def _forget(self) -> None:
        """Stop counting and timing this connection (once)."""
        if self._counted:
            self._counted = False
            CONNECTIONS.dec()
        if self._peer is not None:
            self.door.release(self._peer)
            self._peer = None
        self._cancel()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _is_proxy(self, client: str) -> bool:
        """Whether `client` is a trusted proxy in front of the router: its clients share it."""
        proxy = self.router_app.proxy if self.router_app is not None else None
        routers_own = getattr(proxy, "trusted", None)  # ROUTER_TRUSTED_PROXIES, where supported
        return any(
            trusted is not None and client in trusted for trusted in (self.trusted, routers_own)
        )

    def _grow(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.door.max_header_bytes:
            self._refuse("headers_too_large", self.door.too_large)

    def _refuse(self, reason: str, refusal: Refusal | None) -> None:
        self._refusal = (reason, refusal)
        raise _Refused(reason)  # httptools stops parsing and raises from feed_data

    def _after_read(self, size: int) -> None:
        door = self.door
        if self._phase == HEAD:
            # httptools keeps an unfinished header to itself: count the reads spent on it.
            self._partial = 0 if self._began else self._partial + size
            if self._partial > door.max_header_bytes:
                self._close("headers_too_large", door.too_large)
            elif self._timer_phase != HEAD:
                self._arm(HEAD, door.header_timeout)
        elif self._phase == BODY:
            if self._timer_phase != BODY:
                self._arm(BODY, door.body_timeout)
            else:
                self._deadline += size / door.body_min_rate
        elif self._timer is not None:
            self._cancel()  # between requests uvicorn's keep-alive timer applies

    def _arm(self, phase: int, seconds: float) -> None:
        self._cancel()
        self._timer_phase = phase
        self._deadline = self.loop.time() + seconds
        self._timer = self.loop.call_at(self._deadline, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_phase = IDLE

    def _expired(self) -> None:
        self._timer = None
        phase = self._timer_phase
        if self.loop.time() < self._deadline:  # pushed back by body bytes since it was armed
            self._timer = self.loop.call_at(self._deadline, self._expired)
            return
        door = self.door
        if self.flow.read_paused:  # the router holds the client's bytes back, not the client
            self._arm(phase, door.header_timeout if phase == HEAD else door.body_timeout)
            return
        if phase == HEAD:
            self._close("header_timeout", door.timeout)
        else:
            self._close("body_timeout", door.timeout, awaiting_body=True)

    def _write_expired(self) -> None:
        self._write_timer = None
        if not self.transport.is_closing() or self.transport.get_write_buffer_size():
            self.door.closed("write_timeout")
            self.transport.abort()

    def _may_answer(self, awaiting_body: bool) -> bool:
        """Whether a refusal written now would be the answer to the request being read."""
        if self.pipeline:
            return False
        running = self.running
        if running is None or running.response_complete:
            return True
        return awaiting_body and running is self.cycle and not running.response_started

    def _close(self, reason: str, refusal: Refusal | None, *, awaiting_body: bool = False) -> None:
        self._cancel()
        transport = self.transport
        if transport.is_closing():
            return
        self.door.closed(reason)
        if refusal is not None and self._may_answer(awaiting_body):
            defaults = b"".join(
                name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
            )
            transport.write(refusal.encode(STATUS_LINE[refusal.status], defaults))
        if transport.get_write_buffer_size():
            transport.abort()  # a client that does not read would hold a closing socket
        else:
            transport.close()
