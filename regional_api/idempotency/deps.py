"""The `Idempotency-Key` header, validated, and the JSON response of an idempotent write."""

import re
from typing import Annotated

from fastapi import Depends, Header
from fastapi.responses import JSONResponse

from common.errors import Unprocessable
from regional_api.idempotency.service import Outcome

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
REPLAY_HEADER = "Idempotent-Replayed"


async def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str | None:
    """The request's Idempotency-Key (1-200 printable characters), if any."""
    if key is None:
        return None
    if not _KEY_RE.match(key):
        raise Unprocessable(
            "Idempotency-Key must be 1-200 printable characters",
            code="invalid_idempotency_key",
        )
    return key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]


def outcome_response(outcome: Outcome) -> JSONResponse:
    """Render an idempotent write's answer, marking replays."""
    headers = {REPLAY_HEADER: "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)
