"""An in-process hint of which seats of a show are taken, so refused holds skip the database.

In a hot on-sale most holds arrive after the seats went; each would still take the show's lock,
run the claim and (best-available) read the seat map only to answer 409. Best-available
remembers the seat map it read when the map refused it: no free seat at all, or (for a request
of no particular seat type) no block of the requested size. Until the hint lapses, holds of
seats it shows taken, best-available on a full show and untyped best-available for at least
that many seats are refused at once. The database stays the only thing that grants seats: the
hint only ever refuses (a hold of seats it shows free goes to the database), and it lapses at
the earliest of `full_show_hint_seconds` after it was learnt, the first deadline of the show's
holds (a lapsed hold frees its seat with no event) and the show's start.

This process forgets a show's hint once a transaction that freed seats of it commits (release,
cancellation, expiry sweep), and a seat map read that began before such a forget is not
recorded. Other replicas learn within the TTL: until then they may refuse a seat that was
freed elsewhere, which a retry a second later gets.

It is also the replica's one signal that a show's availability changed here: every forget, and
every hold or payment this replica makes (`changed`), calls `on_change` with the show, which
drops the show's cached reads (`regional_api/shows/cache.py`).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

# Each cached seat costs about 150 bytes (its id, label and dict slot): about 8 MB at most.
MAX_SEATS = 50_000


@dataclass(frozen=True, slots=True)
class _Entry:
    until: datetime
    labels: Mapping[int, str]  # every seat of the show: seat id -> label
    free: frozenset[int]  # the seats that were free (none: the show was full)
    no_block_from: int | None  # no block of this many adjacent seats (of the default types)

    @property
    def size(self) -> int:
        return len(self.labels) + len(self.free) + 1


class FullShows:
    """Seat maps of shows that refused a best-available request, each until a deadline."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_seats: int = MAX_SEATS,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_seats = max_seats
        self.on_change = on_change  # told of every show whose seats changed here
        self.version = 0  # moves on every forget: a mark read before it is stale
        self._entries: dict[str, _Entry] = {}
        self._size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def mark(
        self,
        show_id: str,
        *,
        now: datetime,
        until: datetime,
        labels: Mapping[int, str],
        free: frozenset[int] = frozenset(),
        no_block_from: int | None = None,
        seen: int | None = None,
    ) -> None:
        """Record that only `free` seats were free at `now`, true at most until `until`.

        `labels` maps every seat id of the show to its label; with `no_block_from`, no block
        of that many adjacent seats was free (best-available without a seat type); `seen` is
        `version` as read before the seat map was (the mark is dropped if a forget happened
        since).
        """
        until = min(until, now + self.ttl)
        if until <= now or (seen is not None and seen != self.version):
            return
        entry = _Entry(until, labels, free, no_block_from)
        self._drop(show_id)
        if entry.size > self.max_seats:
            return
        if self._size + entry.size > self.max_seats:
            self._make_room(entry.size, now)
        self._entries[show_id] = entry
        self._size += entry.size

    def is_full(self, show_id: str, now: datetime) -> bool:
        """Whether the show is known to have no free seat at `now`."""
        entry = self._live(show_id, now)
        return entry is not None and not entry.free

    def lacks_block(self, show_id: str, count: int, now: datetime) -> bool:
        """Whether the show is known to have no `count` adjacent free seats of the default types."""
        entry = self._live(show_id, now)
        if entry is None:
            return False
        return not entry.free or (entry.no_block_from is not None and count >= entry.no_block_from)

    def taken(self, show_id: str, seat_ids: Sequence[int], now: datetime) -> list[str] | None:
        """The sorted labels of the seats known to be taken, if all of them are the show's."""
        entry = self._live(show_id, now)
        if entry is None:
            return None
        labels = entry.labels
        if not all(seat_id in labels for seat_id in seat_ids):
            return None  # unknown seats: the database answers (422 unknown_seats)
        gone = sorted(labels[seat_id] for seat_id in seat_ids if seat_id not in entry.free)
        return gone or None  # every seat was free: the database decides

    def forget(self, show_id: str) -> None:
        """Drop the show's hint: seats of it were freed."""
        self.version += 1
        self._drop(show_id)
        self.changed(show_id)

    def changed(self, show_id: str) -> None:
        """Seats of the show were taken or sold here (the hint stays true: it only refuses)."""
        if self.on_change is not None:
            self.on_change(show_id)

    def _live(self, show_id: str, now: datetime) -> _Entry | None:
        entry = self._entries.get(show_id)
        if entry is not None and entry.until <= now:
            self._drop(show_id)
            return None
        return entry

    def _drop(self, show_id: str) -> None:
        entry = self._entries.pop(show_id, None)
        if entry is not None:
            self._size -= entry.size

    def _make_room(self, size: int, now: datetime) -> None:
        """Drop expired entries, then the oldest ones, until `size` more seats fit."""
        for show_id in [s for s, e in self._entries.items() if e.until <= now]:
            self._drop(show_id)
        while self._entries and self._size + size > self.max_seats:
            self._drop(next(iter(self._entries)))


_PENDING = "full_shows.forget"  # session.info key: shows to forget when it commits


def forget_on_commit(session: AsyncSession, full: FullShows | None, show_id: str) -> None:
    """Forget the show's hint when the session commits (its freed seats are visible only then)."""
    if full is None:
        return
    pending: set[str] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = set()

        def forget(committed: Session) -> None:
            for pending_show in committed.info.pop(_PENDING, ()):
                full.forget(pending_show)

        event.listen(session.sync_session, "after_commit", forget, once=True)
    pending.add(show_id)
