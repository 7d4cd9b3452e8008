"""Idempotent writes as one dependency: an endpoint that declares `IdempotencyDep` opts in.

The dependency reads and validates the `Idempotency-Key` header and scopes the key to the
caller. `once` runs a write that commits in one unit (holds); a write of several units (a
payment: open, charge, settle) claims and stores through the same object (payments/flow.py).
Either way the answer is sent with `respond`: the stored status and body, marked on a replay.
"""

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from common.auth import Claims
from common.db import Conn
from common.errors import Unprocessable
from regional_api.idempotency.service import Idempotency, Outcome

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
REPLAY_HEADER = "Idempotent-Replayed"


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


@contextlib.asynccontextmanager
async def unit(conn: Conn, idem: Idempotency) -> AsyncIterator[Conn]:
    """`conn` in a transaction when a key is sent (the key commits with the write), else as is."""
    # Without a key a one-statement write commits on its own: no BEGIN and COMMIT round trips.
    async with conn.transaction() if idem.key else contextlib.nullcontext():
        yield conn


async def once(
    idem: Idempotency,
    conn: Conn,
    request: BaseModel,
    write: Callable[[], Awaitable[BaseModel]],
    *,
    status: int = 201,
) -> JSONResponse:
    """Run `write` once per key and answer `status` with its result (or replay the stored answer)."""
    async with unit(conn, idem):
        outcome = await idem.claim(conn, request)
        if outcome is None:
            outcome = await idem.store(conn, status, (await write()).model_dump(mode="json"))
    return respond(outcome)
