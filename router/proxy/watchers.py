"""Held watches and the feed each waits on: one answer, encoded once, for all its watchers.

`router.proxy.watch.Watches` keeps the table and reads the states; a `Feed` answers its
`Watcher`s with the state read last (a final state in one pass, closing the connections).
"""

import asyncio
import heapq
import json
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

if TYPE_CHECKING:
    from router.proxy.protocol import RouterProtocol

WATCHERS = Gauge("router_watchers", "Requests held open on a watch, waiting for a change")
ANSWERS = Counter(
    "router_watch_answers_total",
    "Watches answered, by why: changed (version), final (sold out or the on-sale gone: answered"
    " and closed), moved (admission reached the watcher's line number), at_once (already"
    " changed when it came), timeout, shutdown",
    ["reason"],
)
FINAL_PASS = Histogram(
    "router_watch_final_pass_seconds",
    "Time to write a final state (sold out, the on-sale gone) to every watcher of a show",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
FINAL_PASS_END = Gauge(
    "router_watch_final_pass_end_timestamp_seconds",
    "When the last final pass ended (Unix time): every watcher held then had been written the"
    " final state; against the last sale's time, how soon the line told the waiting customers",
)
_HEADERS = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))
CLOSE = (b"connection", b"close")
_FINAL_VERSIONS = frozenset({"none", "http-404"})  # the on-sale gone; the show gone


class Answer:
    """One answer to many held requests: encoded once, kept-alive and closing variants."""

    __slots__ = ("body", "closing", "final", "headers", "kept", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.body = body
        self.final = False  # the watch ends here: set by `Feed.publish`
        self.headers = [*_HEADERS, *headers, (b"content-length", b"%d" % len(body))]
        lines = b"".join(name + b": " + value + b"\r\n" for name, value in self.headers)
        head = (STATUS_LINE.get(status) or b"HTTP/1.1 %d \r\n" % status) + lines
        self.kept = head + b"\r\n" + body
        self.closing = head + b"connection: close\r\n\r\n" + body


def _final(version: str, state: Answer) -> bool:
    """Whether `state` ends every watch of its line: sold out, or the on-sale or show gone."""
    if version in _FINAL_VERSIONS:
        return True
    if state.status != 200:
        return False
    try:
        return json.loads(state.body).get("sold_out") is True
    except (ValueError, AttributeError):
        return False


def error(status: int, code: str, detail: str, retry_after: int | None = None) -> Answer:
    """An answer with the `schemas` error body."""
    body: dict[str, object] = {"error": code, "detail": detail}
    headers = []
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers.append((b"retry-after", b"%d" % retry_after))
    return Answer(status, headers, json.dumps(body).encode())


class Watcher:
    """One held request: the protocol's current cycle until it is answered."""

    __slots__ = (
        "disconnected",
        "feed",
        "keep_alive",
        "protocol",
        "response_complete",
        "seen",
        "until",
    )

    def __init__(
        self, protocol: "RouterProtocol | Any", keep_alive: bool, seen: str, until: int | None
    ) -> None:
        self.protocol = protocol
        self.keep_alive = keep_alive
        self.seen = seen
        self.until = until
        self.feed: Feed | None = None
        # What uvicorn's HttpToolsProtocol reads and writes on its current cycle.
        self.response_complete = False
        self.disconnected = False

    def __lt__(self, other: "Watcher") -> bool:
        """Order in a feed's heap: by line number (only watchers with one are pushed)."""
        return (self.until or 0) < (other.until or 0)

    def due(self, version: str | None, admitted: int) -> bool:
        """Whether the state read last is news to this watcher."""
        if version is None:
            return False
        return version != self.seen or (self.until is not None and admitted >= self.until)

    def client_gone(self) -> None:
        """The client hung up: forget the watch, write nothing."""
        self.disconnected = True
        if self.feed is not None:
            self.feed.drop(self)
        self.protocol = None  # a swept tick may still list this watcher: not its connection

    def answer(self, answer: Answer) -> None:
        """Write the whole answer."""
        if self.response_complete:
            return
        if self.feed is not None:
            self.feed.drop(self)
        self.response_complete = True
        protocol = self.protocol
        transport = protocol.transport
        if not self.disconnected and not transport.is_closing():
            if self.keep_alive and not answer.final:
                transport.write(answer.kept)
            else:
                transport.write(answer.closing)
                transport.close()  # once the write has drained
        self.protocol = None
        protocol.on_response_complete()

    def finish(self, answer: Answer) -> asyncio.Transport | None:
        """Write a final answer; the transport to close (no keep-alive timer: nothing follows)."""
        self.response_complete = True
        protocol, self.protocol = self.protocol, None
        transport: asyncio.Transport = protocol.transport
        protocol.server_state.total_requests += 1
        if self.disconnected or transport.is_closing():
            return None
        transport.write(answer.closing)
        return transport


class AsgiWatcher(Watcher):
    """A held request on the ASGI path (uvicorn's own protocols): its answer, when it comes."""

    __slots__ = ("answered",)

    def __init__(self, loop: asyncio.AbstractEventLoop, seen: str, until: int | None) -> None:
        super().__init__(None, True, seen, until)
        self.answered: asyncio.Future[Answer] = loop.create_future()

    def answer(self, answer: Answer) -> None:
        """Hand the answer to the request's task."""
        if self.feed is not None:
            self.feed.drop(self)
        self.response_complete = True
        if not self.answered.done():
            self.answered.set_result(answer)

    def finish(self, answer: Answer) -> asyncio.Transport | None:
        """Hand the final answer to the request's task (it closes the connection)."""
        self.feed = None
        self.answer(answer)
        return None


class Feed:
    """One watched state, read upstream for all its watchers; the answer they get, encoded once."""

    __slots__ = (
        "admitted",
        "final",
        "heap",
        "idle_since",
        "key",
        "path",
        "state",
        "task",
        "version",
        "watchers",
    )

    def __init__(self, key: tuple[str, str], path: str) -> None:
        self.key = key
        self.path = path
        self.version: str | None = None  # None: not read yet
        self.final = False  # the version read last ends every watch
        self.admitted = 0
        self.state: Answer | None = None
        self.watchers: set[Watcher] = set()
        self.heap: list[Watcher] = []  # those with a line number, by it; lazily pruned
        self.task: asyncio.Task[None] | None = None
        self.idle_since = time.monotonic()

    def add(self, watcher: Watcher) -> None:
        """Hold `watcher` until the state is news to it."""
        watcher.feed = self
        if watcher.seen == self.version:
            watcher.seen = self.version  # one string per show, not one per watcher
        self.watchers.add(watcher)
        WATCHERS.inc()
        if watcher.until is not None:
            heapq.heappush(self.heap, watcher)
            if len(self.heap) > 2 * len(self.watchers) + 1024:  # mostly answered already
                self.heap = [held for held in self.heap if held.feed is self]
                heapq.heapify(self.heap)

    def drop(self, watcher: Watcher) -> None:
        """Stop holding `watcher` (answered or gone); its heap entry is pruned later."""
        if watcher.feed is self:
            watcher.feed = None
            self.watchers.discard(watcher)
            WATCHERS.dec()
            if not self.watchers:
                self.idle_since = time.monotonic()

    def publish(self, version: str, admitted: int, state: Answer) -> None:
        """A new reading: answer every watcher it is news to, with the same bytes."""
        changed = version != self.version
        if changed:  # a final state always comes with a version of its own
            self.final = _final(version, state)
        state.final = self.final
        self.version, self.admitted, self.state = version, admitted, state
        if changed and self.final:
            self.finish(state)
            return
        if changed:
            due = [w for w in self.watchers if w.due(version, admitted)]
            reason = "changed"
        else:
            due = []
            while self.heap and (self.heap[0].until or 0) <= admitted:
                watcher = heapq.heappop(self.heap)
                if watcher.feed is self:
                    due.append(watcher)
            reason = "moved"
        if due:
            self._release(due)
            for watcher in due:
                watcher.answer(state)
            ANSWERS.labels(reason).inc(len(due))

    def _release(self, watchers: list[Watcher]) -> None:
        """Stop holding `watchers` at once: one gauge update (under its lock), not one each."""
        self.watchers.difference_update(watchers)
        for watcher in watchers:
            watcher.feed = None
        WATCHERS.dec(len(watchers))
        if not self.watchers:
            self.idle_since = time.monotonic()

    def finish(self, state: Answer) -> None:
        """Write a final state to every watcher in one pass, then close their connections."""
        started = time.perf_counter()
        watchers, self.watchers, self.heap = self.watchers, set(), []
        written = []
        for watcher in watchers:
            watcher.feed = None
            transport = watcher.finish(state)
            if transport is not None:
                written.append(transport)
        # Closing costs as much as writing: every customer hears the news first.
        asyncio.get_running_loop().call_soon(_close_all, written)
        self.idle_since = time.monotonic()
        WATCHERS.dec(len(watchers))
        ANSWERS.labels("final").inc(len(watchers))
        FINAL_PASS.observe(time.perf_counter() - started)
        FINAL_PASS_END.set_to_current_time()


def _close_all(transports: list[asyncio.Transport]) -> None:
    """Close transports written a final answer (each closes once its write has drained)."""
    for transport in transports:
        transport.close()  # a request pipelined behind the watch is dropped: connection: close
