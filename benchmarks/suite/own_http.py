"""The on-sale rush's HTTP/1.1 client: a customer's own keep-alive connection, or a bounded pool.

The on-sale rush gives every customer a connection of its own (its held watch, then its next
request, on the same socket), so a generator process holds thousands of them; the large
variant's customers also share bounded pools (`OwnPool`: an edge proxy's). aiohttp's client
spends a few hundred microseconds of CPU per request; this one parses with httptools (as
uvicorn does) over a bare asyncio protocol, a small share of that, so the generator leaves the
two cores to the stack. It speaks just enough of aiohttp's API (`request(...)` and `get(...)`
as async context managers with `.status` and `await .json()`) for `line_rush._request`.
"""

import asyncio
import json
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httptools


class _Protocol(asyncio.Protocol):
    """The socket's side: feeds the parser, hands each complete answer to the waiting request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write requests on."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Parse what came; a garbled answer fails the request and the connection."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad answer: {exc}"))

    def on_body(self, body: bytes) -> None:
        """Collect the body (the parser undoes chunking)."""
        self.body.append(body)

    def on_message_complete(self) -> None:
        """Hand the answer over; close when the server will not keep the connection."""
        answer = (self.parser.get_status_code(), b"".join(self.body))
        self.body = []
        if not self.parser.should_keep_alive():
            self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        """A closed connection fails the request waiting on it."""
        self.closed = True
        self._fail(ConnectionResetError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        """Close the socket; a request still waiting on it fails."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Answer:
    """A response as `line_rush._request` reads it."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    async def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class _Exchange:
    """`async with conn.request(...) as answer`: one request and its answer."""

    __slots__ = ("conn", "request")

    def __init__(self, conn: "OwnConnection", request: bytes) -> None:
        self.conn = conn
        self.request = request

    async def __aenter__(self) -> Answer:
        status, body = await self.conn.exchange(self.request)
        return Answer(status, body)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class OwnConnection:
    """A customer's keep-alive connection to `url`, opened on first use and again after a close.

    One request at a time uses it; a request sent while another is in flight (the customer's
    leave beside its seat-map read) gets a second connection, as a browser opens one more to a
    busy host, and both are kept for the customer's next requests.
    """

    def __init__(self, url: str, timeout: float = 300.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self.idle: list[_Protocol] = []  # open connections no request is using
        self.busy: set[_Protocol] = set()
        self.opened = 0  # connections opened so far

    def request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> _Exchange:
        """A request (a JSON body if `json` is not None) as an async context manager."""
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        body = b""
        if json is not None:
            body = _dumps(json)
            lines.append("content-type: application/json")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"content-length: {len(body)}")
        return _Exchange(self, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def get(self, path: str) -> _Exchange:
        """A GET, as aiohttp's `session.get`."""
        return self.request("GET", path)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send `request`, await its answer; once more on a new connection if a kept-alive one
        was closed by the server before answering (as browsers retry on a reused connection)."""
        protocol, reused = await self._acquire()
        try:
            return await self._send(protocol, request)
        except ConnectionResetError:
            if not reused:
                raise
            protocol, _ = await self._acquire(fresh=True)
            return await self._send(protocol, request)

    async def _acquire(self, fresh: bool = False) -> tuple[_Protocol, bool]:
        """An idle open connection (reused: True), else a new one."""
        while self.idle and not fresh:
            protocol = self.idle.pop()
            if not protocol.closed:
                self.busy.add(protocol)
                return protocol, True
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        self.opened += 1
        self.busy.add(protocol)
        return protocol, False

    async def _send(self, protocol: _Protocol, request: bytes) -> tuple[int, bytes]:
        protocol.waiter = asyncio.get_running_loop().create_future()
        assert protocol.transport is not None
        protocol.transport.write(request)
        try:
            async with asyncio.timeout(self.timeout):
                answer = await protocol.waiter
        except BaseException:
            protocol.close()  # an unanswered request leaves the connection unusable
            raise
        finally:
            protocol.waiter = None
            self.busy.discard(protocol)
        if not protocol.closed:  # a `connection: close` answer closed it: the next opens one
            self.idle.append(protocol)
        return answer

    def close(self) -> None:
        """Close every connection (the next request opens another)."""
        for protocol in [*self.idle, *self.busy]:
            protocol.close()
        self.idle.clear()
        self.busy.clear()


class OwnPool(OwnConnection):
    """Keep-alive connections to `url` that many customers share, at most `limit` in use (0: no
    bound), as aiohttp's connector limit or an edge proxy's pool.

    A request borrows an idle connection (or opens one) and gives it back with its answer; the
    requests above `limit` wait, first come first served, for a slot. A `connection: close`
    answer frees its slot, and the next request opens a new connection.
    """

    def __init__(self, url: str, limit: int, timeout: float = 300.0) -> None:
        super().__init__(url, timeout)
        self.slots = asyncio.Semaphore(limit) if limit > 0 else None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send `request` on a borrowed connection once a slot is free; await its answer."""
        if self.slots is None:
            return await super().exchange(request)
        async with self.slots:
            return await super().exchange(request)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
