"""Joins of a show the router knows is sold out, answered here as the region would answer them.

The watch (router.proxy.watch) reads each watched line's state; once a read says `sold_out`, a
join (`POST /shows/{id}/line`) or a poll (`GET`) of that show gets the region's answer for it,
`200 {"show_id", "state": "sold_out", ...}`, from the router, without the region (issue 17:
at 20,000 customers thousands of joins were still queued for the region at the sell-out). Joins
already waiting in the region's line leave it when the news comes (`Outbound.listed`). The
bearer token is verified as the region verifies it; without keys to verify with, the region
answers. A show is remembered `KEPT_SECONDS` after the last read that saw it sold out; a read
that sees it on sale again (a re-opened on-sale) forgets it.
"""

import time
from typing import Any

from prometheus_client import Counter

from common.auth import TokenVerifier
from common.errors import Unauthorized
from common.line import Listed
from router.proxy.resolve import Route
from schemas.onsale import LineState, LineStatus

ANSWERED = Counter(
    "router_line_answered_total",
    "Joins and polls of a show's line the router answered itself, by answer: sold_out (the"
    " watch read the show sold out), unauthorized (no valid token for such an answer)",
    ["answer"],
)
# The watch's feed reads a state every 0.1 s while watched and stops 5 s after its last
# watcher left; a minute more covers the joins of customers who arrive after the last watcher.
KEPT_SECONDS = 65.0
KEPT_PER_REGION = 1024  # shows remembered per region; past it the oldest is forgotten
_LISTS_KEPT = 4096  # shows with joins waiting in a line; past it the empty lists are dropped
_METHODS = frozenset({"POST", "GET"})
_SUFFIX = "/line"


def line_show(method: str, route: Route) -> str | None:
    """The show whose line `method` on `route` joins or polls (None: any other request)."""
    if method not in _METHODS or route.region is None:
        return None
    path = route.path.split("?", 1)[0]
    if not path.startswith("/shows/") or not path.endswith(_SUFFIX):
        return None
    show_id = path[len("/shows/") : -len(_SUFFIX)]
    return show_id if show_id and "/" not in show_id else None


class SoldOut:
    """The shows each region's line state was last read sold out, and the answer for them."""

    def __init__(self, verifier: TokenVerifier | None) -> None:
        self.verifier = verifier
        # region -> show -> (monotonic time until which it is known, the encoded answer)
        self.shows: dict[str, dict[str, tuple[float, bytes]]] = {}
        # (region, show) -> the joins of the show waiting in the region's line
        self._waiting: dict[tuple[str, str], Listed] = {}

    def saw(self, key: tuple[str, str], status: int, state: dict[str, Any] | None) -> None:
        """A read of the line's state (router.proxy.watch): remember a sell-out, forget a re-open."""
        region, show_id = key
        shows = self.shows.setdefault(region, {})
        if status != 200 or state is None or state.get("sold_out") is not True:
            shows.pop(show_id, None)
            return
        try:
            answer = LineStatus(
                show_id=show_id,
                state=LineState.sold_out,
                opens_at=state.get("opens_at"),
                line_length=state.get("line_length", 0),
            )
        except ValueError:  # not the region's state: the region answers its joins
            shows.pop(show_id, None)
            return
        shows.pop(show_id, None)  # re-inserted last: the dict stays in order of the last read
        if len(shows) >= KEPT_PER_REGION:
            del shows[next(iter(shows))]
        shows[show_id] = (time.monotonic() + KEPT_SECONDS, answer.model_dump_json().encode())
        listed = self._waiting.pop(key, None)
        if listed is not None:
            listed.leave()  # answered by the router now (LeftLine)

    def known(self, region: str, show_id: str) -> bytes | None:
        """The region's answer for a show known sold out; None if it is not (or no longer)."""
        shows = self.shows.get(region)
        entry = shows.get(show_id) if shows else None
        if entry is None:
            return None
        until, body = entry
        if time.monotonic() > until:
            del shows[show_id]  # type: ignore[union-attr]  # entry came from it
            return None
        return body

    def answers(self, method: str, route: Route) -> bool:
        """Whether a request is a join or poll of a show known sold out that can be answered."""
        show_id = line_show(method, route)
        if show_id is None or route.region is None or not self.can_verify():
            return False
        return self.known(route.region, show_id) is not None

    def can_verify(self) -> bool:
        """Whether a token can be checked here (keys fetched): else the region answers."""
        return self.verifier is not None and bool(self.verifier.keys.kids)

    def waiting(self, region: str, show_id: str) -> Listed:
        """Where the show's joins waiting in the region's line are listed, sent away at the news."""
        key = (region, show_id)
        listed = self._waiting.get(key)
        if listed is None:
            if len(self._waiting) >= _LISTS_KEPT:
                self._waiting = {k: v for k, v in self._waiting.items() if v.waiters}
            listed = self._waiting[key] = Listed()
        return listed

    async def verify(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Raise `Unauthorized` as the region would for the request's bearer token."""
        assert self.verifier is not None  # callers asked `can_verify`
        header = next((value for name, value in headers if name.lower() == b"authorization"), None)
        if header is None:
            raise Unauthorized()
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("expected 'Authorization: Bearer <token>'")
        await self.verifier.verify(token.strip())
