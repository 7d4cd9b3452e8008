"""The replica's cache of hot show reads: rendered bodies with their ETag, never older than a bound.

During an on-sale thousands of customers poll the same seat map. An entry is the response body
as one read rendered it, its ETag (computed once, when the entry is made) and the app-clock
time that read started; a read is served from it while it is younger than `max_age`
(`REGIONAL_SHOW_CACHE_MAX_AGE_MS`, 250 ms), so a change made elsewhere (another replica, the
box office, an expiry) shows within that bound. Concurrent misses of one entry share one query
(single flight); at most `max_entries` entries are kept, the least recently used dropped first.

This replica's own holds, releases, cancellations and payments of a show drop its entries at
once (`forget`, called through `FullShows`' change signal), and a query that was running when
they did is not stored. The cache only answers reads: a hold is decided by the database.

It also keeps each show's layout (`layouts`, regional_api/shows/layouts.py: what never changes
about a show, from which a read renders its body), whatever the bound, even 0.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge

from regional_api.shows.layouts import Layouts

KINDS = ("show", "seats")  # what is cached of a show: its read and its seat map

_HITS = Counter("show_cache_hits_total", "Show reads served from the replica's cache", ["kind"])
_MISSES = Counter(
    "show_cache_misses_total", "Show reads that waited for a query (own or shared)", ["kind"]
)
_LOADS = Counter("show_cache_loads_total", "Queries run to fill the show cache", ["kind"])
_NOT_MODIFIED = Counter(
    "show_cache_not_modified_total", "Show reads answered 304 (If-None-Match matched)", ["kind"]
)
_ENTRIES = Gauge("show_cache_entries", "Entries in the replica's show cache")

Key = tuple[str, str]  # (kind, show id)
Load = Callable[[], Awaitable[tuple[bytes, str] | None]]  # (body, ETag), or None: no such show


@dataclass(frozen=True, slots=True)
class Entry:
    """A rendered response body, its strong ETag, and when the query behind it started."""

    body: bytes
    etag: str
    made_at: datetime


class _Flight:
    """A query under way for one key; `stale` once the show changed while it ran."""

    __slots__ = ("stale", "task")

    def __init__(self, task: "asyncio.Task[Entry | None]") -> None:
        self.task = task
        self.stale = False


class ShowCache:
    """Per-replica, bounded, single-flight cache of show reads and seat maps."""

    def __init__(self, max_age_seconds: float, max_entries: int) -> None:
        self.max_age = timedelta(seconds=max_age_seconds)
        self.max_entries = max_entries
        # What never changes about a show, whatever the bound (even 0): availability changes
        # (`forget`) leave it alone, a layout replacement of its hall replaces it.
        self.layouts = Layouts(max_entries)
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._flights: dict[Key, _Flight] = {}
        self._hits = {kind: _HITS.labels(kind) for kind in KINDS}
        self._misses = {kind: _MISSES.labels(kind) for kind in KINDS}
        self._loads = {kind: _LOADS.labels(kind) for kind in KINDS}
        self._not_modified = {kind: _NOT_MODIFIED.labels(kind) for kind in KINDS}
        _ENTRIES.set_function(lambda: float(len(self._entries)))

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: Key, now: datetime, load: Load) -> Entry | None:
        """The entry of `key` if younger than the bound at `now`, else `load()`ed (None: no show).

        `load` must read the database as of `now` (the entry's age counts from it).
        """
        entry = self.fresh(key, now)
        if entry is not None:
            return entry
        self._misses[key[0]].inc()
        flight = self._flights.get(key)
        if flight is None:
            flight = self._start(key, now, load)
        # Shielded: a caller that hangs up does not cancel the query the others wait for.
        return await asyncio.shield(flight.task)

    def fresh(self, key: Key, now: datetime) -> Entry | None:
        """The entry of `key` if it is younger than the bound at `now` (a hit), else None."""
        entry = self._entries.get(key)
        if entry is None or not entry.made_at <= now < entry.made_at + self.max_age:
            return None
        self._entries.move_to_end(key)
        self._hits[key[0]].inc()
        return entry

    def not_modified(self, kind: str) -> None:
        """Count a read answered 304."""
        self._not_modified[kind].inc()

    def forget(self, show_id: str) -> None:
        """Drop the show's entries; a query of it running now will not be stored."""
        for kind in KINDS:
            key = (kind, show_id)
            self._entries.pop(key, None)
            flight = self._flights.pop(key, None)
            if flight is not None:
                flight.stale = True

    def _start(self, key: Key, now: datetime, load: Load) -> _Flight:
        self._loads[key[0]].inc()
        task = asyncio.ensure_future(self._load(load, now))
        flight = self._flights[key] = _Flight(task)
        task.add_done_callback(lambda done: self._landed(key, flight, done))
        return flight

    async def _load(self, load: Load, now: datetime) -> Entry | None:
        loaded = await load()
        return None if loaded is None else Entry(*loaded, now)

    def _landed(self, key: Key, flight: _Flight, task: "asyncio.Task[Entry | None]") -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if task.cancelled() or task.exception() is not None:  # each waiter got the error
            return
        entry = task.result()
        if entry is None or flight.stale or self.max_age <= timedelta(0):
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
