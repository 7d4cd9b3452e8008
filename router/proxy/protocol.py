"""uvicorn's httptools protocol, with the router's fast path tried before the ASGI cycle.

Serve the router with `uvicorn --factory router.main:create_app --http
router.proxy.protocol:RouterProtocol`; with uvicorn's own protocols every request takes the
ASGI path, which behaves the same, only slower.
"""

import asyncio
import sys
from typing import Any

import httptools
from starlette.types import Scope
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from router.proxy.bounds import IDLE, BoundedProtocol
from router.proxy.fastpath import Exchange, FastPath
from router.proxy.headers import read_request_headers
from router.proxy.watchers import Watcher

_OWN_CYCLES = (Exchange, Watcher)  # cycles this protocol runs itself, with no ASGI task

# What `uvicorn --http` takes to serve the router with this protocol.
SPEC = "router.proxy.protocol:RouterProtocol"
_FAST_METHODS = frozenset({b"GET", b"POST"})
_SERVERS: dict[Any, Any] = {}  # the listening addresses, one tuple each for every connection


class _Pipeline(list[Any]):
    """uvicorn's queue of pipelined requests as a list: an empty deque is 760 bytes."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        """Queue `item` behind the others (`pop` takes the oldest)."""
        self.insert(0, item)


class _Flow(FlowControl):
    """uvicorn's flow control, with its writable event only while writing is paused."""

    def __init__(self, transport: asyncio.Transport) -> None:  # no super(): its Event, 900 bytes
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._is_writable_event: asyncio.Event | None = None  # type: ignore[assignment]

    async def drain(self) -> None:
        """Return once the transport takes writes again."""
        event = self._is_writable_event
        if event is not None:
            await event.wait()

    def pause_writing(self) -> None:
        """The transport's buffer is full: writers wait."""
        if not self.write_paused:
            self.write_paused = True
            self._is_writable_event = asyncio.Event()

    def resume_writing(self) -> None:
        """The buffer drained: wake the writers."""
        event = self._is_writable_event
        if self.write_paused and event is not None:
            self.write_paused = False
            self._is_writable_event = None
            event.set()


class RouterProtocol(BoundedProtocol):
    """Takes qualifying GETs and small POSTs on the fast path; the rest goes to the ASGI cycle."""

    __slots__ = ("fast",)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.fast: FastPath | None = self.router_app.fast if self.router_app else None
        self.pipeline = _Pipeline()  # type: ignore[assignment]  # appendleft, pop, len: all used

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _Flow(transport)
        self.server = _SERVERS.setdefault(self.server, self.server)
        if self.client is not None:
            self.client = (sys.intern(self.client[0]), self.client[1])  # behind a proxy: a few

    def on_response_complete(self) -> None:
        super().on_response_complete()
        running, cycle = self.running, self.cycle
        if (
            self._phase == IDLE
            and not self.pipeline
            and (running is None or running.response_complete)
            and (cycle is None or cycle.response_complete)
        ):
            # Idle until the next request: keep neither the last one nor its cycle.
            self.running = self.cycle = None  # type: ignore[assignment]  # as before a request
            self._forget_request()

    def _forget_request(self) -> None:
        """Drop the parsed request line and headers (the next request parses its own)."""
        self.scope = self.headers = None  # type: ignore[assignment]  # as before a request
        self.url = b""

    def dispatch(self) -> None:
        if self.fast is None or not self._start_fast(self.fast):
            super().dispatch()

    def _start_fast(self, fast: FastPath) -> bool:
        parser = self.parser
        cycle = self.cycle
        method = parser.get_method()
        if (
            method not in _FAST_METHODS
            or (cycle is not None and not cycle.response_complete)
            or self.pipeline
            or self.limit_concurrency is not None
            or self.root_path
            or self.expect_100_continue
            or parser.should_upgrade()
        ):
            return False
        url = httptools.parse_url(self.url)
        raw_path: bytes = url.path
        if b"%" in raw_path or not raw_path.isascii():
            return False  # uvicorn's decoding rules apply: the ASGI path
        client = self.client[0] if self.client else None
        inbound = read_request_headers(
            self.headers, client=client, scheme=self.scheme or "http", trusted=fast.proxy.trusted
        )
        if inbound.chunked or inbound.bad_length:
            return False
        if inbound.content_length and (method == b"GET" or inbound.content_length > fast.max_body):
            return False  # a GET's body, or a large body: the ASGI path (and its 413)
        if inbound.forwarded and self.trusted is not None and client in self.trusted:
            return False  # the proxy-headers middleware rewrites client and scheme first
        version = parser.get_http_version()
        scope: Scope = self.scope  # type: ignore[assignment]  # the ASGI path reads it alike
        scope["method"] = method.decode("ascii")
        scope["path"] = raw_path.decode("ascii")
        scope["raw_path"] = raw_path
        scope["query_string"] = url.query or b""
        if version != "1.1":
            scope["http_version"] = version
        keep_alive = version != "1.0" and bool(parser.should_keep_alive())
        exchange = fast.start(self, scope, inbound, keep_alive)
        if exchange is None:
            return False
        if isinstance(exchange, Watcher):
            self._forget_request()  # a held watch keeps only its `Watcher`
        self.cycle = exchange  # type: ignore[assignment]  # it has what uvicorn reads on a cycle
        self.running = exchange  # type: ignore[assignment]
        return True

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if isinstance(cycle, Exchange):
            cycle.body_part(body)
        elif not isinstance(cycle, _OWN_CYCLES):
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if isinstance(cycle, _OWN_CYCLES):
            self.message_done()
            if isinstance(cycle, Exchange):
                cycle.body_done()
        else:
            super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        for cycle in (self.running, self.cycle):
            if isinstance(cycle, _OWN_CYCLES):
                cycle.client_gone()
        if isinstance(self.cycle, _OWN_CYCLES):
            self.cycle = None  # type: ignore[assignment]  # uvicorn would signal it as a cycle
        super().connection_lost(exc)

    def shutdown(self) -> None:
        cycle = self.cycle
        if isinstance(cycle, Watcher) and not cycle.response_complete and self.fast is not None:
            self.fast.watches.shutdown(cycle)  # answered now: the client re-opens elsewhere
            return
        super().shutdown()

    def resume(self, exchange: Exchange) -> None:
        """Finish a fast exchange on the ASGI path (its scope carries the `Resume`)."""
        cycle = RequestResponseCycle(
            scope=exchange.scope,  # type: ignore[arg-type]  # built by uvicorn as an HTTPScope
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=exchange.keep_alive,
            on_response=self.on_response_complete,
        )
        cycle.more_body = False  # a whole request: its body, if any, is in `Resume.outbound`
        cycle.message_event.set()
        cycle.disconnected = exchange.disconnected
        if self.cycle is exchange:  # type: ignore[comparison-overlap]
            self.cycle = cycle
        self._start_asgi_task(cycle, self.app)
