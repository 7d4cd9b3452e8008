"""Exactly-once writes: the key row is claimed in the same transaction as the write.

`INSERT ... ON CONFLICT DO NOTHING RETURNING` either claims the key (then the write runs and its
answer is stored in the row) or finds it taken; a concurrent duplicate waits on the unique index
until the first transaction ends, then reads the stored answer and replays it.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel

from common.db import Conn, fetch_one, run
from common.errors import Conflict, Unprocessable

IDEMPOTENT_REQUESTS = Counter(
    "idempotent_requests_total", "Writes carrying an Idempotency-Key by outcome", ["outcome"]
)

_CLAIM = """
INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (%(scope)s, %(key)s, %(hash)s)
ON CONFLICT DO NOTHING RETURNING 1
"""
_READ = (
    "SELECT request_hash, status_code, response FROM idempotency_keys"
    " WHERE scope = %(scope)s AND key = %(key)s"
)
_STORE = (
    "UPDATE idempotency_keys SET status_code = %(status)s, response = CAST(%(body)s AS jsonb)"
    " WHERE scope = %(scope)s AND key = %(key)s"
)


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
    replayed: bool = False


def request_hash(method: str, path: str, body: Any) -> str:
    """Fingerprint a request: sha256 of method, path and the canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()}\n{path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A write's Idempotency-Key (None: not sent), whose key it is, and the path it was sent to."""

    key: str | None
    scope: str
    path: str

    async def claim(self, conn: Conn, request: BaseModel) -> Outcome | None:
        """Claim the key for this write (None: go ahead), or the stored answer to replay."""
        if self.key is None:
            return None
        fingerprint = request_hash("POST", self.path, request.model_dump(mode="json"))
        params = {"scope": self.scope, "key": self.key}
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

    async def store(self, conn: Conn, status: int, body: dict[str, Any]) -> Outcome:
        """Store the answer that retries of this write replay (nothing without a key)."""
        if self.key is not None:
            params = {"scope": self.scope, "key": self.key, "status": status}
            await run(conn, _STORE, params | {"body": json.dumps(body)})
        return Outcome(status, body)
