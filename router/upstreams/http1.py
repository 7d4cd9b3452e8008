"""The router's one HTTP client: keep-alive pools of asyncio protocols, HTTP/1.1 to upstreams.

Measured in docs/benchmarks/router.md: aiohttp's client cost more CPU per proxied request than
the whole rest of the router; this one writes each request in one call and parses answers with
httptools (the parser uvicorn uses), which is all a proxy to known upstreams needs. Proxying,
fan-out, readiness probes, directory map and JWKS fetches all go through it.
"""

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from router.upstreams.slots import Slots

Headers = Sequence[tuple[bytes, bytes]]

_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
_CLOSE = (b"Connection", b"close")
_HIGH_WATER = 256 * 1024  # pause reading the upstream when the client is this far behind


class ConnectFailed(ConnectionError):
    """No connection could be made: no byte of the request left the router."""


class PoolBusy(ConnectFailed):
    """Every connection to the upstream stayed busy: nothing was sent, the upstream may be fine."""


class Disconnected(ConnectionError):
    """The connection broke after the request was sent: the upstream may have acted on it."""


class Listener(Protocol):
    """Told of an answer's progress instead of futures being resolved (the proxy's fast path)."""

    def on_head(self, conn: "Connection") -> None:
        """The status and headers have arrived."""

    def on_done(self, conn: "Connection") -> None:
        """The whole body has arrived (it is in `conn.chunks`)."""

    def on_fail(self, conn: "Connection", error: Exception) -> None:
        """The answer cannot be completed."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset(head=False, listener=None)

    def _reset(self, *, head: bool, listener: Listener | None) -> None:
        self.head = head
        self.listener = listener
        self.status = 0
        self.headed = False
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.framed = False  # length or chunked: the end of the body is known without EOF
        self.keep_alive = False
        # A listener is called back instead: no future to create and resolve per request.
        self.headers_ready: asyncio.Future[None] | None = (
            None if listener else self.loop.create_future()
        )
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.body_done = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None

    def send(self, data: bytes, *, head: bool, listener: Listener | None = None) -> None:
        """Write one whole request; `listener`, if given, hears of the answer."""
        self._reset(head=head, listener=listener)
        assert self.transport is not None
        self.transport.write(data)

    def time_out(self) -> None:
        """Give up waiting for the answer's headers."""
        if not self.headed:
            self._fail(TimeoutError("no answer from upstream in time"))

    def time_out_body(self) -> None:
        """Give up waiting for the rest of the body (listener mode only)."""
        if not self.body_done:
            self._fail(TimeoutError("upstream body stalled"))

    def close(self) -> None:
        """Close the socket."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Disconnected(f"bad answer from upstream: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headed and not self.framed and not self.head:
            self.on_message_complete()  # the body ran to EOF: that is how it ends
        else:
            self._fail(Disconnected("upstream closed the connection"))

    def _fail(self, error: Exception) -> None:
        if not self.body_done:
            self.error = error
        if self.listener is not None:
            self.listener.on_fail(self, error)
            return
        ready = self.headers_ready
        if ready is not None and not ready.done():
            ready.set_exception(error)
            ready.exception()  # retrieved here; the caller re-raises it
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-length" and value.isdigit():
            self.content_length = int(value)
            self.framed = True
        elif lower == b"transfer-encoding":
            self.framed = True
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = bool(self.parser.should_keep_alive())
        if self.head:
            # httptools cannot skip a HEAD answer's announced body: never reuse this socket.
            self.keep_alive = False
            self.body_done = True
        if self.status in (204, 304):
            self.framed = True
        self.headed = True
        if self.listener is not None:
            self.listener.on_head(self)
        elif self.headers_ready is not None and not self.headers_ready.done():
            self.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.body_done = True
        if self.listener is not None:
            self.listener.on_done(self)
        else:
            self._wake()


class Response:
    """An answer whose headers have arrived; the body is read with `read` or `chunks`."""

    __slots__ = ("_conn", "_pool", "_released", "status")

    def __init__(self, conn: "Connection", pool: "Http1Pool") -> None:
        self._conn = conn
        self._pool = pool
        self._released = False
        self.status = conn.status

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Header names and values as sent."""
        return self._conn.raw_headers

    @property
    def content_length(self) -> int | None:
        """The announced body length, if any."""
        return self._conn.content_length

    async def _next(self) -> bytes:
        conn = self._conn
        while not conn.chunks:
            if conn.body_done:
                return b""
            if conn.error is not None:
                raise conn.error
            conn.waiter = conn.loop.create_future()
            async with asyncio.timeout(self._pool.read_timeout):
                await conn.waiter
        chunk = conn.chunks.popleft()
        conn.buffered -= len(chunk)
        if conn.buffered <= _HIGH_WATER and conn.transport is not None and not conn.closed:
            conn.transport.resume_reading()
        return chunk

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while chunk := await self._next():
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as it arrives."""
        while chunk := await self._next():
            yield chunk

    def release(self) -> None:
        """Give the connection back (reused only if the answer was read to its end)."""
        if not self._released:
            self._released = True
            conn = self._conn
            reusable = conn.body_done and conn.keep_alive and not conn.chunks and not conn.closed
            self._pool.give_back(conn, reusable=reusable)


@dataclass(slots=True)
class Answer:
    """A whole answer, read by `Http1Pool.get`."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of the header `name` (given in lower case), if it was sent."""
        return next((value for key, value in self.headers if key.lower() == name), None)


class Http1Pool:
    """Keep-alive connections to one upstream base URL, at most `limit` open at once."""

    def __init__(
        self,
        url: str,
        *,
        limit: int,
        keepalive: float,
        connect_timeout: float,
        read_timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http:// or https:// URL, not {url!r}")
        self.host = parts.hostname
        https = parts.scheme == "https"
        self.port = parts.port or (443 if https else 80)
        # Certificate and host name are checked by the context (router/upstreams/tls.py).
        self.tls = (tls or ssl.create_default_context()) if https else None
        self.host_header = parts.netloc.encode("latin-1")
        self.base_path = parts.path.rstrip("/")  # an upstream may live under a path prefix
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._slots = Slots(limit)
        self._idle: list[Connection] = []
        self._closed = False

    def encode(self, method: str, target: str, headers: Headers, body: bytes | None) -> bytes:
        """One whole request, ready to write."""
        target = self.base_path + target
        lines = [f"{method} {target} HTTP/1.1\r\nHost: ".encode("latin-1"), self.host_header]
        for name, value in headers:
            lines += (b"\r\n", name, b": ", value)
        if body is not None or method not in _BODYLESS:
            lines.append(f"\r\nContent-Length: {len(body) if body else 0}".encode())
        lines.append(b"\r\n\r\n")
        if body:
            lines.append(body)
        return b"".join(lines)

    async def request(
        self, method: str, target: str, headers: Headers, body: bytes | None, *, wait: float
    ) -> Response:
        """Send a request on a pooled connection; wait at most `wait` seconds for the headers."""
        conn = await self._acquire()
        conn.send(self.encode(method, target, headers, body), head=method == "HEAD")
        # A timer handle is much cheaper than asyncio.timeout() on this path (py-spy profile).
        timer = conn.loop.call_later(wait, conn.time_out)
        try:
            assert conn.headers_ready is not None
            await conn.headers_ready
        except BaseException:
            self.give_back(conn, reusable=False)
            raise
        finally:
            timer.cancel()
        return Response(conn, self)

    async def get(self, target: str, headers: Headers = (), *, fresh: bool = False) -> Answer:
        """GET `target` and read the whole answer (no deadline of its own: the caller sets one).

        `fresh` uses a new connection, outside the pool's limit and closed afterwards: a probe
        then proves that a connect works, and is never queued behind busy proxied requests.
        """
        if not fresh:
            response = await self.request("GET", target, headers, None, wait=self.read_timeout)
            try:
                return Answer(response.status, response.raw_headers, await response.read())
            finally:
                response.release()
        conn = await self._connect()
        try:
            conn.send(self.encode("GET", target, [*headers, _CLOSE], None), head=False)
            assert conn.headers_ready is not None
            await conn.headers_ready
            # Read like any answer, but never given back: it holds no slot of the pool.
            response = Response(conn, self)
            return Answer(response.status, response.raw_headers, await response.read())
        finally:
            conn.close()

    def take_idle(self) -> "Connection | None":
        """A kept-alive connection, taken with its slot without waiting; None if there is none."""
        if not self._idle or not self._slots.take_now():
            return None
        conn = self._reuse()
        if conn is None:
            self._slots.give()
        return conn

    def _reuse(self) -> "Connection | None":
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.loop.time() - conn.idle_since < self.keepalive:
                return conn
            conn.close()
        return None

    async def _acquire(self) -> Connection:
        if not self._slots.take_now():
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await self._slots.take()
            except TimeoutError:
                raise PoolBusy(f"all connections to {self.host}:{self.port} busy") from None
        conn = self._reuse()
        if conn is not None:
            return conn
        try:
            return await self._connect()
        except BaseException:
            self._slots.give()
            raise

    async def _connect(self) -> Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await asyncio.get_running_loop().create_connection(
                    Connection, self.host, self.port, ssl=self.tls
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn

    def give_back(self, conn: Connection, *, reusable: bool) -> None:
        """Return a connection to the pool, or close it."""
        if reusable and not self._closed:
            conn.idle_since = conn.loop.time()
            self._idle.append(conn)
        else:
            conn.close()
        self._slots.give()

    async def close(self) -> None:
        """Close every idle connection; busy ones close when given back."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
