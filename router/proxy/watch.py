"""Coalesced watches: one upstream read of a show's line for every customer waiting on it.

A customer in an on-sale's line holds `GET /shows/{id}/line/watch?seen=VERSION&until=N` open
(issue 17). The router reads the line's public state (`GET /shows/{id}/line/state`, answered
from the replica's counters) once per `ROUTER_WATCH_READ_INTERVAL_SECONDS` per (region, show)
while anyone watches it, and answers a held request with the same pre-encoded bytes when the
state's version is not `seen` (the draw, the sell-out), when admission reached line number `N`,
or after `ROUTER_WATCH_TIMEOUT_SECONDS` plus jitter (the client then asks again). A held request
holds no upstream connection and no in-flight slot: it costs its client connection and a few
hundred bytes here. At most `ROUTER_WATCHERS_MAX` are held; beyond, 503 with `Retry-After`.
"""

import asyncio
import heapq
import itertools
import json
import logging
import random
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from prometheus_client import Counter, Gauge
from starlette.types import Scope
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
_HEADERS = b"content-type: application/json\r\ncache-control: no-store\r\n"


def _error(status: int, code: str, detail: str, retry_after: int | None = None) -> bytes:
    """A whole answer with the `schemas` error body."""
    body = {"error": code, "detail": detail}
    extra = b""
    if retry_after is not None:
        body["retry_after"] = retry_after  # type: ignore[assignment]
        extra = b"retry-after: %d\r\n" % retry_after
    return _encode(status, extra, json.dumps(body).encode(), keep_alive=True)


def _encode(status: int, headers: bytes, body: bytes, *, keep_alive: bool) -> bytes:
    return b"".join(
        (
            STATUS_LINE.get(status) or b"HTTP/1.1 %d \r\n" % status,
            _HEADERS,
            headers,
            b"content-length: %d\r\n" % len(body),
            b"\r\n" if keep_alive else b"connection: close\r\n\r\n",
            body,
        )
    )


class Watcher:
    """One held request: the protocol's current cycle until it is answered."""

    __slots__ = (
        "disconnected",
        "feed",
        "keep_alive",
        "protocol",
        "response_complete",
        "seen",
        "timer",
        "until",
    )

    def __init__(
        self, protocol: "RouterProtocol", keep_alive: bool, seen: str, until: int | None
    ) -> None:
        self.protocol = protocol
        self.keep_alive = keep_alive
        self.seen = seen
        self.until = until
        self.feed: Feed | None = None
        self.timer: asyncio.TimerHandle | None = None
        # What uvicorn's HttpToolsProtocol reads and writes on its current cycle.
        self.response_complete = False
        self.disconnected = False

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

    def answer(self, data: bytes, close: bytes | None = None) -> None:
        """Write a whole answer (`close`: its variant that closes the connection)."""
        if self.response_complete:
            return
        if self.feed is not None:
            self.feed.drop(self)
        self.response_complete = True
        protocol = self.protocol
        transport = protocol.transport
        if not self.disconnected and not transport.is_closing():
            transport.write(data if self.keep_alive or close is None else close)
            if not self.keep_alive:
                transport.close()
        protocol.on_response_complete()


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
        self.state: tuple[bytes, bytes] = (b"", b"")  # the answer kept alive, and closing
        self.watchers: set[Watcher] = set()
        self.heap: list[tuple[int, int, Watcher]] = []  # (until, arrival, watcher), lazily pruned
        self.task: asyncio.Task[None] | None = None
        self.idle_since = time.monotonic()

    def add(self, watcher: Watcher, seq: int) -> None:
        """Hold `watcher` until the state is news to it."""
        watcher.feed = self
        self.watchers.add(watcher)
        WATCHERS.inc()
        if watcher.until is not None:
            heapq.heappush(self.heap, (watcher.until, seq, watcher))
            if len(self.heap) > 2 * len(self.watchers) + 1024:  # mostly answered already
                self.heap = [entry for entry in self.heap if entry[2].feed is self]
                heapq.heapify(self.heap)

    def drop(self, watcher: Watcher) -> None:
        """Stop holding `watcher` (answered or gone); its heap entry is pruned later."""
        if watcher.feed is self:
            watcher.feed = None
            self.watchers.discard(watcher)
            WATCHERS.dec()
            if watcher.timer is not None:
                watcher.timer.cancel()
                watcher.timer = None
            if not self.watchers:
                self.idle_since = time.monotonic()

    def publish(self, version: str, admitted: int, state: tuple[bytes, bytes]) -> None:
        """A new reading: answer every watcher it is news to, with the same bytes."""
        changed = version != self.version
        self.version, self.admitted, self.state = version, admitted, state
        if changed:
            due = [w for w in self.watchers if w.due(version, admitted)]
            reason = "changed"
        else:
            due = []
            while self.heap and self.heap[0][0] <= admitted:
                watcher = heapq.heappop(self.heap)[2]
                if watcher.feed is self:
                    due.append(watcher)
            reason = "moved"
        for watcher in due:
            watcher.answer(state[0], close=state[1])
        if due:
            ANSWERS.labels(reason).inc(len(due))


class Watches:
    """The table of feeds and held requests, bounded by `ROUTER_WATCHERS_MAX`."""

    def __init__(self, settings: RouterSettings, proxy: "ProxyApp") -> None:
        self.settings = settings
        self.proxy = proxy
        self.feeds: dict[tuple[str, str], Feed] = {}
        self._arrivals = itertools.count()
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
        match = WATCH_PATH.fullmatch(route.path.split("?", 1)[0])
        if match is None or route.region is None:
            return None
        query = parse_qs(scope["query_string"].decode("latin-1"))
        seen = query.get("seen", [""])[0][:_MAX_SEEN]
        until_text = query.get("until", [""])[0]
        watcher = Watcher(protocol, keep_alive, seen, None)
        loop = protocol.loop
        if until_text:
            if not until_text.isdigit() or len(until_text) > 9:
                bad = _error(400, "bad_request", "until must be a line number")
                loop.call_soon(watcher.answer, bad)
                return watcher
            watcher.until = int(until_text)
        show_id = match.group(1)
        feed = self.feeds.get((route.region, show_id))
        if feed is not None and watcher.due(feed.version, feed.admitted):
            ANSWERS.labels("at_once").inc()
            loop.call_soon(watcher.answer, feed.state[0], feed.state[1])
            return watcher
        if self.held >= self.settings.watchers_max:
            REFUSED.inc()
            loop.call_soon(watcher.answer, self.full)
            return watcher
        if feed is None:
            feed = self._feed(route.region, show_id)
        feed.add(watcher, next(self._arrivals))
        hold = (
            self.settings.watch_timeout_seconds
            + random.random() * self.settings.watch_jitter_seconds
        )
        watcher.timer = loop.call_later(hold, self._expire, watcher)
        return watcher

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
        watcher.timer = None
        if feed is None:
            return
        ANSWERS.labels("timeout").inc()
        if feed.version is None:
            watcher.answer(self.unread)
        else:
            watcher.answer(feed.state[0], close=feed.state[1])

    def shutdown(self, watcher: Watcher) -> None:
        """The router stops: answer now and close, so the client re-opens elsewhere."""
        watcher.keep_alive = False
        feed = watcher.feed
        if feed is None:
            return
        ANSWERS.labels("shutdown").inc()
        if feed.version is None:
            watcher.answer(self.unread)
        else:
            watcher.answer(feed.state[0], close=feed.state[1])

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
                version, admitted = str(state["version"]), int(state["admitted_through"])
            except (ValueError, KeyError, TypeError):
                READS.labels("malformed").inc()
                return
        head = b"x-watch-version: " + version.encode("latin-1", "replace") + b"\r\n"
        encoded = (
            _encode(status, head, body, keep_alive=True),
            _encode(status, head, body, keep_alive=False),
        )
        feed.publish(version, admitted, encoded)
