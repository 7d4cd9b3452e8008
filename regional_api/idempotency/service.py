"""Exactly-once writes: the key row commits with the write, in the write's own statement.

A write of one statement (a hold, a payment's open and its settle) carries its key: the
statement starts with `KEY_USED` (the key's row, if the key was already used) and writes
nothing then; otherwise it inserts the key row with the answer's status and the id of what it
made, and the statement commits on its own (autocommit: one round trip). A replay rebuilds the
answer from that row (the reservation, the payment), not from a stored body. A concurrent
duplicate that slipped past `KEY_USED` is refused by the row it locks or the key's primary key
and then finds the key (`Key.run`). A write of several statements (a counter sale: hold, open)
claims the key first in its transaction and stores its rendered answer (`Idempotency.claim`).
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import Counter
from psycopg.errors import UniqueViolation
from pydantic import BaseModel

from common.db import Conn, fetch_one, run
from common.errors import AppError, Conflict, Unprocessable

IDEMPOTENT_REQUESTS = Counter(
    "idempotent_requests_total", "Writes carrying an Idempotency-Key by outcome", ["outcome"]
)
T = TypeVar("T")

# The first CTE of a statement that carries its key; the statement returns the row's columns
# as key_hash, key_status and key_response (NULL: the key was free and the write went ahead).
KEY_USED = """used AS (
  SELECT request_hash, status_code, response FROM idempotency_keys
  WHERE scope = %(scope)s AND key = %(key)s)"""
KEY_COLUMNS = """(SELECT request_hash FROM used) AS key_hash,
       (SELECT status_code FROM used) AS key_status,
       (SELECT response FROM used) AS key_response"""

_CLAIM = """
INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (%(scope)s, %(key)s, %(hash)s)
ON CONFLICT DO NOTHING RETURNING 1
"""
_READ = (
    "SELECT request_hash AS key_hash, status_code AS key_status, response AS key_response"
    " FROM idempotency_keys WHERE scope = %(scope)s AND key = %(key)s"
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


@dataclass(frozen=True, slots=True)
class Stored:
    """A used key's row: the request's fingerprint, the answer's status and what it stored."""

    request_hash: str
    status: int | None
    response: dict[str, Any] | None

    @classmethod
    def of(cls, row: Any) -> "Stored | None":
        """The key row a statement returned as key_hash/key_status/key_response (None: free)."""
        if row is None or row.key_hash is None:
            return None
        response = None if row.key_response is None else dict(row.key_response)
        return cls(row.key_hash, row.key_status, response)

    def replayed(self) -> Outcome:
        """The answer stored whole, to send again (`Key.replay` refuses a key without one)."""
        assert self.status is not None
        return Outcome(self.status, self.response or {}, replayed=True)

    def made(self, kind: str) -> str | None:
        """The id of the `kind` the write made (e.g. reservation_id), if it stored one."""
        if self.response is None or self.response.keys() != {kind}:
            return None  # an answer stored whole (a counter sale)
        made: str = self.response[kind]
        return made


class KeyUsed(Exception):
    """A keyed statement found its key already used: the write did nothing."""

    def __init__(self, stored: Stored) -> None:
        super().__init__("idempotency key already used")
        self.stored = stored


def check_used(row: Any) -> None:
    """Raise KeyUsed when a keyed statement's row says its key was already used."""
    stored = Stored.of(row)
    if stored is not None:
        raise KeyUsed(stored)


def request_hash(method: str, path: str, body: Any) -> str:
    """Fingerprint a request: sha256 of method, path and the canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()}\n{path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Key:
    """A sent Idempotency-Key bound to its request: the parameters a keyed statement takes."""

    scope: str
    key: str
    fingerprint: str

    def params(self) -> dict[str, str]:
        """The %(scope)s, %(key)s and %(hash)s of a keyed statement."""
        return {"scope": self.scope, "key": self.key, "hash": self.fingerprint}

    async def read(self, conn: Conn) -> Stored | None:
        """The key's row as it is now (None: unused)."""
        return Stored.of(await fetch_one(conn, _READ, self.params()))

    def replay(self, stored: Stored) -> Stored:
        """The stored row to replay: 422 for another request's key, 409 while it has no answer."""
        if stored.request_hash != self.fingerprint:
            IDEMPOTENT_REQUESTS.labels("reused").inc()
            raise IdempotencyKeyReused()
        if stored.status is None:
            raise IdempotencyInProgress()
        IDEMPOTENT_REQUESTS.labels("replayed").inc()
        return stored

    async def run(self, conn: Conn, write: Callable[[], Awaitable[T]]) -> T | Stored:
        """Run a write whose statement carries this key; the row to replay if it was used.

        A refusal may be a retry of a write that was done (its seats are ours now, the show
        filled up) or a concurrent duplicate that lost the race: the key, read afresh, says.
        """
        try:
            done = await write()
        except KeyUsed as used:
            return self.replay(used.stored)
        except (AppError, UniqueViolation):
            stored = await self.read(conn)
            if stored is None:
                raise
            return self.replay(stored)
        IDEMPOTENT_REQUESTS.labels("first").inc()
        return done


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A write's Idempotency-Key (None: not sent), whose key it is, and the path it was sent to."""

    key: str | None
    scope: str
    path: str

    def bind(self, request: BaseModel) -> Key | None:
        """The key with the request's fingerprint (None without a key)."""
        if self.key is None:
            return None
        body = request.model_dump(mode="json")
        return Key(self.scope, self.key, request_hash("POST", self.path, body))

    async def claim(self, conn: Conn, request: BaseModel) -> Outcome | None:
        """Claim the key in the caller's transaction (None: go ahead), or the answer to replay."""
        key = self.bind(request)
        if key is None:
            return None
        if await fetch_one(conn, _CLAIM, key.params()) is not None:
            IDEMPOTENT_REQUESTS.labels("first").inc()
            return None
        stored = await key.read(conn)
        assert stored is not None  # the claim found it taken, and key rows are never deleted
        return key.replay(stored).replayed()

    async def store(self, conn: Conn, status: int, body: dict[str, Any]) -> Outcome:
        """Store the answer that retries of this write replay (nothing without a key)."""
        if self.key is not None:
            params = {"scope": self.scope, "key": self.key, "status": status}
            await run(conn, _STORE, params | {"body": json.dumps(body)})
        return Outcome(status, body)
