"""Idempotent writes as one dependency: an endpoint that declares `IdempotencyDep` opts in.

The dependency reads and validates the `Idempotency-Key` header and scopes the key to the
caller. `once` runs a write whose one statement carries the key (holds); a payment carries it
in its open and its settle statements (payments/flow.py), and a counter sale claims it in its
transaction (`Idempotency.claim`). A replay is marked with `Idempotent-Replayed: true`.
"""

import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from common.auth import Claims
from common.db import Conn
from common.errors import Unprocessable
from regional_api.idempotency.service import Idempotency, Key, Outcome, Stored

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
REPLAY_HEADER = "Idempotent-Replayed"
JSON = "application/json"


async def idempotency(
    request: Request,
    claims: Claims,
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Idempotency:
    """The request's Idempotency-Key (1-200 printable characters, if sent), scoped to the caller."""
    if key is not None and not _KEY_RE.match(key):
        raise Unprocessable(
            "Idempotency-Key must be 1-200 printable characters",
            code="invalid_idempotency_key",
        )
    return Idempotency(key, claims.sub, request.url.path)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


def respond(outcome: Outcome) -> JSONResponse:
    """Render an idempotent write's answer, marking replays."""
    headers = {REPLAY_HEADER: "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)


async def once(
    idem: Idempotency,
    conn: Conn,
    request: BaseModel,
    write: Callable[[Key | None], Awaitable[BaseModel]],
    rebuild: Callable[[Stored], Awaitable[BaseModel | None]],
    *,
    status: int = 201,
) -> Response:
    """Run a one-statement write once per key (its statement carries it); answer `status`.

    A replay answers the stored status with what the write made as it stands now (`rebuild`),
    or with the answer an earlier release stored whole (`rebuild` gives None).
    """
    key = idem.bind(request)
    done = await write(None) if key is None else await key.run(conn, lambda: write(key))
    if not isinstance(done, Stored):
        return Response(done.model_dump_json(), status_code=status, media_type=JSON)
    stored = done.replayed()
    rebuilt = await rebuild(done)
    if rebuilt is None:  # stored whole by an earlier release
        return respond(stored)
    headers = {REPLAY_HEADER: "true"}
    return Response(
        rebuilt.model_dump_json(), status_code=stored.status, headers=headers, media_type=JSON
    )
