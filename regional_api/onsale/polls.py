"""The line's polls answered from memory before the request pipeline (pure ASGI).

In a rush most requests are waiting customers asking where they stand. A poll that shows a
valid line ticket for a line whose counters are fresh is answered here from the counters, in
front of the observability and admission middlewares, with no routing, dependency injection or
response-model pass: 44 us of CPU instead of 511 us through the endpoint (measured in process on
this 2-core VM). Such a poll is counted in `onsale_line_polls_total{answered="memory"}`, not in
the request metrics, and not logged one line each (like `/healthz`); its request id is echoed.
Anything else, a refusal included, goes on to the endpoint (`onsale/router.py`), which answers
it the same way or from the database. The line's public state (`GET /shows/{id}/line/state`,
what the router's watch reads for all the customers of a show) is answered here alike.
"""

import re

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from common.errors import AppError
from common.observability import REQUEST_ID_HEADER
from regional_api.onsale import passes, rooms, service

POLLS = Counter(
    "onsale_line_polls_total",
    "Polls of a place in line, by what answered them (the replica's counters or the database)",
    ["answered"],
)
STATES = Counter(
    "onsale_line_state_reads_total",
    "Reads of a line's public state (the routers' watches), by what answered them",
    ["answered"],
)
_LINE_PATH = re.compile(r"/shows/([^/]+)/line(/state)?")
_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()


class LinePolls:
    """Answer `GET /shows/{id}/line` with a line ticket from the replica's counters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _LINE_PATH.fullmatch(scope["path"])
            body = None
            if match and match.group(2):
                body = _state_from_memory(scope, match.group(1))
            elif match:
                body = await _from_memory(scope, match.group(1))
            if body is not None:
                headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
                headers += [(k, v) for k, v in scope["headers"] if k == _REQUEST_ID]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


async def _from_memory(scope: Scope, show_id: str) -> bytes | None:
    """The poll's answer from the counters, or None when the endpoint must answer."""
    ticket = authorization = None
    for name, value in scope["headers"]:
        if name == b"x-line-ticket":
            ticket = value.decode("latin-1")
        elif name == b"authorization":
            authorization = value.decode("latin-1")
    if ticket is None or authorization is None:
        return None
    state = scope["app"].state
    line = state.waiting_rooms.fresh(show_id)
    scheme, _, token = authorization.partition(" ")
    if line is None or scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        claims = await state.verifier.verify(token.strip())
    except AppError:  # the endpoint answers the 401
        return None
    rooms = state.waiting_rooms
    valid, number = passes.ticket_number(rooms.secret, ticket, show_id=show_id, user_id=claims.sub)
    if not valid:
        return None
    rank = rooms.ranked(show_id, claims.sub, number)
    now = state.clock.now()
    status = service.place_from_line(line, show_id=show_id, rank=rank, ticket=ticket, now=now)
    if status is None:
        return None
    POLLS.labels("memory").inc()
    return status.model_dump_json().encode()


def _state_from_memory(scope: Scope, show_id: str) -> bytes | None:
    """A line's public state from the counters, or None when the endpoint must answer."""
    line = scope["app"].state.waiting_rooms.fresh(show_id)
    if line is None:
        return None
    STATES.labels("memory").inc()
    return rooms.progress(show_id, line, sold_out=line.sold_out).model_dump_json().encode()
