"""Coalesced watches: one upstream read of a show's line for every customer waiting on it.

A customer in an on-sale's line holds `GET /shows/{id}/line/watch?seen=VERSION&until=N` open
(issue 17). The router reads the line's public state (`GET /shows/{id}/line/state`, answered
from the replica's counters) once per `ROUTER_WATCH_READ_INTERVAL_SECONDS` per (region, show)
while anyone watches it, and answers a held request with the same pre-encoded bytes when the
state's version is not `seen` (the draw, the sell-out), when admission reached line number `N`,
or after `ROUTER_WATCH_TIMEOUT_SECONDS` plus jitter (the client then asks again). A final state
(sold out, the on-sale or the show gone) is written to every watcher in one pass with
`connection: close`: the customer is done, so no keep-alive timer or per-watcher bookkeeping.
A held request holds no upstream connection and no in-flight slot: it costs its client
connection and a few hundred bytes here, 3.7 KiB in all. At most `ROUTER_WATCHERS_MAX` are
held; beyond, 503 with `Retry-After`.
"""

import asyncio
import json
import logging
import math
import random
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from prometheus_client import Counter, Gauge
from starlette.types import Receive, Scope, Send

from router.config import RouterSettings
from router.proxy.resolve import Route
from router.proxy.watchers import ANSWERS, CLOSE, Answer, AsgiWatcher, Feed, Watcher, error
from router.upstreams.send import NoHealthyEndpoint, Outbound, RegionOverloaded, UpstreamFailed

if TYPE_CHECKING:
    from router.proxy.app import ProxyApp
    from router.proxy.protocol import RouterProtocol

log = logging.getLogger("router.watch")

FEEDS = Gauge("router_watch_feeds", "Watched resources, each read once for all its watchers")
REFUSED = Counter("router_watch_refused_total", "Watches refused: ROUTER_WATCHERS_MAX were held")
READS = Counter("router_watch_reads_total", "Reads of a watched state upstream", ["outcome"])

WATCH_PATH = re.compile(r"/shows/([^/?]+)/line/watch")
_MAX_SEEN = 64  # characters of a version a client may send back
_IDLE_SECONDS = 5.0  # a feed nobody watched this long stops reading
# Holds end on ticks of this many seconds, swept by one timer: a timer per watch costs 600 bytes.
_TICK = 0.25


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
        self.full = error(503, "watchers_full", "too many held watches, retry shortly", retry)
        self.unread = error(503, "region_unavailable", "the line's state is not known", retry)

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
            headers = [*answer.headers, CLOSE] if answer.final else answer.headers
            await send(start | {"headers": headers})
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
                bad = error(400, "bad_request", "until must be a line number")
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
        version, admitted, state = f"http-{status}", 0, None
        if status == 200:
            try:
                state = json.loads(body)
                version = str(state["version"])
                # Line numbers (a ticket's: an early customer's draw key) where the region says.
                admitted = int(state.get("admitted_mark", state["admitted_through"]))
            except (ValueError, KeyError, TypeError):
                READS.labels("malformed").inc()
                return
        self.proxy.sold_out.saw(feed.key, status, state)  # joins of a sold-out show: soldout.py
        head = [(b"x-watch-version", version.encode("latin-1", "replace"))]
        feed.publish(version, admitted, Answer(status, head, body))
