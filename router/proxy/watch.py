"""Coalesced watches: one upstream read of a show's line for every customer waiting on it.

A customer in an on-sale's line holds `GET /shows/{id}/line/watch?seen=VERSION&until=N` open
(issue 17). The router reads the line's public state (`GET /shows/{id}/line/state`, answered
from the replica's counters) once per `ROUTER_WATCH_READ_INTERVAL_SECONDS` per (region, show)
while anyone watches it, and answers a held request with the same pre-encoded bytes when the
state's version is not `seen` (the draw, the sell-out), when admission reached line number `N`,
or after `ROUTER_WATCH_TIMEOUT_SECONDS` plus jitter (the client then asks again). A held request
holds no upstream connection and no in-flight slot: it costs its client connection and a few
hundred bytes here, 3.7 KiB in all. At most `ROUTER_WATCHERS_MAX` are held; beyond, 503 with
`Retry-After`.
"""

import asyncio
import heapq
import json
import logging
import math
import random
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from prometheus_client import Counter, Gauge
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from router.config import RouterSettings
from router.proxy.resolve import Route
from router.upstreams.send import NoHealthyEndpoint, Outbound, RegionOverloaded, UpstreamFailed

if TYPE_CHECKING:
    from router.proxy.app import ProxyApp
    from router.proxy.protocol import RouterProtocol

log = logging.getLogger("router.watch")

WATCHERS = Gauge("router_watchers", "Requests held open on a watch, waiting for a change")
FEEDS = Gauge("router_watch_feeds", "Watched resources, each read once for all its watchers")
ANSWERS = Counter(
    "router_watch_answers_total",
    "Watches answered, by why: changed (version), moved (admission reached the watcher's"
    " line number), at_once (already changed when it came), timeout, shutdown",
    ["reason"],
)
REFUSED = Counter("router_watch_refused_total", "Watches refused: ROUTER_WATCHERS_MAX were held")
READS = Counter("router_watch_reads_total", "Reads of a watched state upstream", ["outcome"])

WATCH_PATH = re.compile(r"/shows/([^/?]+)/line/watch")
_MAX_SEEN = 64  # characters of a version a client may send back
_IDLE_SECONDS = 5.0  # a feed nobody watched this long stops reading
# Holds end on ticks of this many seconds, swept by one timer: a timer per watch costs 600 bytes.
_TICK = 0.25
_HEADERS = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))


class Answer:
    """One answer to many held requests: encoded once, kept-alive and closing variants."""

    __slots__ = ("body", "closing", "headers", "kept", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.body = body
        self.headers = [*_HEADERS, *headers, (b"content-length", b"%d" % len(body))]
        lines = b"".join(name + b": " + value + b"\r\n" for name, value in self.headers)
        head = (STATUS_LINE.get(status) or b"HTTP/1.1 %d \r\n" % status) + lines
        self.kept = head + b"\r\n" + body
        self.closing = head + b"connection: close\r\n\r\n" + body


def _error(status: int, code: str, detail: str, retry_after: int | None = None) -> Answer:
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
            transport.write(answer.kept if self.keep_alive else answer.closing)
            if not self.keep_alive:
                transport.close()
        self.protocol = None
        protocol.on_response_complete()


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


class Feed:
    """One watched state, read upstream for all its watchers; the answer they get, encoded once."""

    __slots__ = (
        "admitted",
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
        self.version, self.admitted, self.state = version, admitted, state
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
        for watcher in due:
            watcher.answer(state)
        if due:
            ANSWERS.labels(reason).inc(len(due))


def _watched(route: Route) -> str | None:
    """The show whose line `route` watches, if it is a watch."""
    match = WATCH_PATH.fullmatch(route.path.split("?", 1)[0])
    return match.group(1) if match and route.region is not None else None


async def _disconnect(receive: Receive) -> None:
    """Return when the client of an ASGI request hangs up."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Watches:
    """The table of feeds and held requests, bounded by `ROUTER_WATCHERS_MAX`."""

    def __init__(self, settings: RouterSettings, proxy: "ProxyApp") -> None:
        self.settings = settings
        self.proxy = proxy
        self.feeds: dict[tuple[str, str], Feed] = {}
        self._ends: dict[int, list[Watcher]] = {}  # tick -> watchers whose hold ends then
        self._sweeper: asyncio.TimerHandle | None = None
        self._next_tick = 0
        retry = settings.unavailable_retry_after_seconds
        self.full = _error(503, "watchers_full", "too many held watches, retry shortly", retry)
        self.unread = _error(503, "region_unavailable", "the line's state is not known", retry)

    @property
    def held(self) -> int:
        """Requests held now."""
        return sum(len(feed.watchers) for feed in self.feeds.values())

    def start(
        self, protocol: "RouterProtocol", scope: Scope, route: Route, keep_alive: bool
    ) -> Watcher | None:
        """Hold the watch in `scope` (None: not a watch, the proxy forwards it)."""
        show_id = _watched(route)
        if show_id is None:
            return None
        watcher = Watcher(protocol, keep_alive, "", None)
        self._hold(watcher, show_id, route, scope, protocol.loop)
        return watcher

    async def serve(self, scope: Scope, receive: Receive, send: Send, route: Route) -> bool:
        """Hold a watch on the ASGI path; False when `route` is not a watch."""
        show_id = _watched(route)
        if show_id is None or scope["method"] != "GET":
            return False
        loop = asyncio.get_running_loop()
        watcher = AsgiWatcher(loop, "", None)
        self._hold(watcher, show_id, route, scope, loop)
        gone = loop.create_task(_disconnect(receive))
        try:
            await asyncio.wait((watcher.answered, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not watcher.answered.done():
                watcher.client_gone()
        if watcher.answered.done():
            answer = watcher.answered.result()
            start = {"type": "http.response.start", "status": answer.status}
            await send(start | {"headers": answer.headers})
            await send({"type": "http.response.body", "body": answer.body})
        return True

    def _hold(
        self,
        watcher: Watcher,
        show_id: str,
        route: Route,
        scope: Scope,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Answer the watch now (news, a bad query, the table full) or hold it."""
        assert route.region is not None
        query = parse_qs(scope["query_string"].decode("latin-1"))
        watcher.seen = query.get("seen", [""])[0][:_MAX_SEEN]
        until_text = query.get("until", [""])[0]
        if until_text:
            if not until_text.isdigit() or len(until_text) > 13:  # 10^12 + rank: 13 digits
                bad = _error(400, "bad_request", "until must be a line number")
                loop.call_soon(watcher.answer, bad)
                return
            watcher.until = int(until_text)
        feed = self.feeds.get((route.region, show_id))
        if feed is not None and feed.state is not None and watcher.due(feed.version, feed.admitted):
            ANSWERS.labels("at_once").inc()
            loop.call_soon(watcher.answer, feed.state)
            return
        if self.held >= self.settings.watchers_max:
            REFUSED.inc()
            loop.call_soon(watcher.answer, self.full)
            return
        if feed is None:
            feed = self._feed(route.region, show_id)
        feed.add(watcher)
        hold = self.settings.watch_timeout_seconds
        hold += random.random() * self.settings.watch_jitter_seconds
        self._end_at(watcher, loop.time() + hold, loop)

    def _end_at(self, watcher: Watcher, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        """Answer `watcher` on the first tick at or after `deadline`, if still held then."""
        tick = math.ceil(deadline / _TICK)
        ending = self._ends.get(tick)
        if ending is None:
            ending = self._ends[tick] = []
            if self._sweeper is None or tick < self._next_tick:
                self._arm(tick, loop)
        ending.append(watcher)

    def _arm(self, tick: int, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._next_tick = tick
        self._sweeper = loop.call_at(tick * _TICK, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """End the holds of every tick that has come."""
        self._sweeper = None
        now = loop.time()
        for tick in sorted(tick for tick in self._ends if tick * _TICK <= now + 0.001):
            for watcher in self._ends.pop(tick):
                self._expire(watcher)
        if self._ends:
            self._arm(min(self._ends), loop)

    def _feed(self, region: str, show_id: str) -> Feed:
        feed = self.feeds[(region, show_id)] = Feed(
            (region, show_id), f"/shows/{show_id}/line/state"
        )
        FEEDS.set(len(self.feeds))
        feed.task = asyncio.get_running_loop().create_task(self._read_forever(feed))
        return feed

    def _expire(self, watcher: Watcher) -> None:
        """The hold is over: the state as last read (the client asks again)."""
        feed = watcher.feed
        if feed is None:
            return  # answered already, or gone
        ANSWERS.labels("timeout").inc()
        watcher.answer(feed.state or self.unread)

    def shutdown(self, watcher: Watcher) -> None:
        """The router stops: answer now and close, so the client re-opens elsewhere."""
        watcher.keep_alive = False
        feed = watcher.feed
        if feed is None:
            return
        ANSWERS.labels("shutdown").inc()
        watcher.answer(feed.state or self.unread)

    async def _read_forever(self, feed: Feed) -> None:
        """Read the state while anyone watches it (and a little after)."""
        try:
            while feed.watchers or time.monotonic() - feed.idle_since < _IDLE_SECONDS:
                started = time.monotonic()
                await self._read(feed)
                pause = self.settings.watch_read_interval_seconds - (time.monotonic() - started)
                await asyncio.sleep(max(0.0, pause))
        finally:
            if self.feeds.get(feed.key) is feed:
                del self.feeds[feed.key]
                FEEDS.set(len(self.feeds))
            for watcher in list(feed.watchers):  # (cancelled at shutdown)
                self.shutdown(watcher)

    async def _read(self, feed: Feed) -> None:
        """One read of the state upstream; a 2xx or 4xx answer is published."""
        pool = self.proxy.pool(Route(feed.key[0], feed.path))
        if pool is None:
            READS.labels("no_region").inc()
            return
        outbound = Outbound(
            method="GET",
            path=feed.path,
            headers=[(b"accept", b"application/json")],
            body=None,
            repeatable=True,
            deadline=self.proxy.deadline(),
            priority=True,  # one read stands for every watcher of the show
        )
        try:
            sent = await self.proxy.sender.send(pool, outbound)
            try:
                body = await sent.response.read()
            finally:
                sent.done()
        except (NoHealthyEndpoint, RegionOverloaded, UpstreamFailed, ConnectionError, TimeoutError):
            READS.labels("failed").inc()
            return
        status = sent.response.status
        if status >= 500:
            READS.labels("failed").inc()
            return
        READS.labels("ok").inc()
        version, admitted = f"http-{status}", 0
        if status == 200:
            try:
                state = json.loads(body)
                version = str(state["version"])
                # Line numbers (a ticket's: an early customer's draw key) where the region says.
                admitted = int(state.get("admitted_mark", state["admitted_through"]))
            except (ValueError, KeyError, TypeError):
                READS.labels("malformed").inc()
                return
        head = [(b"x-watch-version", version.encode("latin-1", "replace"))]
        feed.publish(version, admitted, Answer(status, head, body))
