"""Exactly-once writes: the key row is claimed in the same transaction as the write.

`INSERT ... ON CONFLICT DO NOTHING RETURNING` either claims the key (then the write runs and its
answer is stored in the row) or finds it taken; a concurrent duplicate waits on the unique index
until the first transaction ends, then reads the stored answer and replays it.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel

from common.db import Conn, fetch_one, raw_sql, run
from common.errors import Conflict, Unprocessable

IDEMPOTENT_REQUESTS = Counter(
    "idempotent_requests_total", "Writes carrying an Idempotency-Key by outcome", ["outcome"]
)

_CLAIM = raw_sql("""
INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (:scope, :key, :hash)
ON CONFLICT DO NOTHING RETURNING 1
""")
_READ = raw_sql(
    "SELECT request_hash, status_code, response FROM idempotency_keys"
    " WHERE scope = :scope AND key = :key"
)
_STORE = raw_sql(
    "UPDATE idempotency_keys SET status_code = :status, response = CAST(:body AS jsonb)"
    " WHERE scope = :scope AND key = :key"
)

Handler = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


class IdempotencyKeyReused(Unprocessable):
    """The key was already used for a different request."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request")


class IdempotencyInProgress(Conflict):
    """The key's first request has not stored an answer (it cannot be replayed yet)."""

    code = "idempotency_in_progress"

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to send: status, JSON body, and whether it is a replay."""

    status: int
    body: dict[str, Any]
    replayed: bool


def request_hash(method: str, path: str, body: Any) -> str:
    """Fingerprint a request: sha256 of method, path and the canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()}\n{path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Keyed:
    """A write's idempotency context: its key (if sent), whose it is, and the request."""

    key: str | None
    scope: str
    path: str
    request: BaseModel


async def claim(conn: Conn, keyed: Keyed) -> Outcome | None:
    """Claim the key for this write (None: go ahead), or the stored answer to replay."""
    if keyed.key is None:
        return None
    fingerprint = request_hash("POST", keyed.path, keyed.request.model_dump(mode="json"))
    params = {"scope": keyed.scope, "key": keyed.key}
    claimed = await fetch_one(conn, _CLAIM, params | {"hash": fingerprint})
    if claimed is not None:
        IDEMPOTENT_REQUESTS.labels("first").inc()
        return None
    row = await fetch_one(conn, _READ, params)
    if row.request_hash != fingerprint:
        IDEMPOTENT_REQUESTS.labels("reused").inc()
        raise IdempotencyKeyReused()
    if row.status_code is None:
        raise IdempotencyInProgress()
    IDEMPOTENT_REQUESTS.labels("replayed").inc()
    return Outcome(int(row.status_code), dict(row.response), replayed=True)


async def store(conn: Conn, keyed: Keyed, status: int, body: dict[str, Any]) -> None:
    """Store the answer that retries of this write replay (nothing without a key)."""
    if keyed.key is None:
        return
    params = {"scope": keyed.scope, "key": keyed.key, "status": status}
    await run(conn, _STORE, params | {"body": json.dumps(body)})


async def run_idempotent(
    conn: Conn, *, key: str | None, scope: str, path: str, request: BaseModel, handler: Handler
) -> Outcome:
    """Run `handler` once per (scope, key) and replay its stored answer to every retry.

    `path` and `request` (the POST's body) are fingerprinted only when a key is given.
    """
    keyed = Keyed(key, scope, path, request)
    replay = await claim(conn, keyed)
    if replay is not None:
        return replay
    status, body = await handler()
    await store(conn, keyed, status, body)
    return Outcome(status, body, replayed=False)
