"""Customers as async HTTP clients, and a ledger of every answer they were given."""

import asyncio
import json as json_lib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.reliability.kit import CARD_OK

# No total timeout: waiting for a pooled connection is the client's own queue, not the server's.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=30.0)


def outcome_of(status: int | None) -> str:
    """Bucket an answer: `2xx`, `4xx`, `429`, `503`, `5xx` or `conn_error` (no answer)."""
    if status is None:
        return "conn_error"
    if status in (429, 503):
        return str(status)
    return f"{status // 100}xx"


@dataclass
class Acked:
    """What the client was last told (with a 2xx) about one reservation."""

    status: str
    seat_ids: list[int]
    payment_id: str | None = None
    # A later write got no clear answer (fault): its effect may or may not have happened.
    uncertain: bool = False


@dataclass
class Ledger:
    """Every request's outcome by kind, with timestamps, and every acknowledged write."""

    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    errors: Counter[tuple[int, str]] = field(default_factory=Counter)
    events: list[tuple[float, str, str]] = field(default_factory=list)
    reservations: dict[str, Acked] = field(default_factory=dict)
    payments: dict[str, str] = field(default_factory=dict)

    def record(self, kind: str, status: int | None) -> None:
        """Count one answer (or its absence)."""
        outcome = outcome_of(status)
        self.statuses[(kind, outcome)] += 1
        if status is not None:
            self.codes[status] += 1
        self.events.append((time.monotonic(), kind, outcome))

    def count(self, outcome: str) -> int:
        """Requests of every kind with this outcome."""
        return sum(n for (_, out), n in self.statuses.items() if out == outcome)

    def server_errors(self) -> dict[int, int]:
        """Answers with a 5xx status other than 503, by status."""
        return {code: n for code, n in self.codes.items() if code >= 500 and code != 503}


@dataclass
class Customer:
    """One customer with a token, talking to the router through a shared session."""

    session: aiohttp.ClientSession
    base: str
    token: str
    ledger: Ledger
    # Keyed writes are retried with the same Idempotency-Key after no answer or a 5xx/503.
    retries: int = 0
    retry_pause: float = 0.25

    async def call(
        self, kind: str, method: str, path: str, *, json: Any = None, key: str | None = None
    ) -> tuple[int | None, Any]:
        """Send one request, record its outcome, return (status, JSON body or None)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        try:
            async with self.session.request(
                method, self.base + path, json=json, headers=headers, timeout=TIMEOUT
            ) as response:
                raw = await response.read()
                status = response.status
            body = _parse(raw)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.ledger.record(kind, None)
            return None, None
        self.ledger.record(kind, status)
        if status >= 500:
            self.ledger.errors[
                (status, str(body.get("error") if isinstance(body, dict) else ""))
            ] += 1
        return status, body

    async def keyed(self, kind: str, path: str, json: Any) -> tuple[int | None, Any]:
        """POST a keyed write, retrying with the same key while the answer is unclear."""
        key = uuid.uuid4().hex
        for attempt in range(self.retries + 1):
            status, body = await self.call(kind, "POST", path, json=json, key=key)
            if (status is not None and status < 500) or attempt == self.retries:
                return status, body
            await asyncio.sleep(self.retry_pause)
        raise AssertionError("unreachable")

    async def hold(self, show_id: str, seat_ids: list[int]) -> str | None:
        """Hold specific seats; return the reservation id when acknowledged."""
        status, body = await self.keyed("hold", f"/shows/{show_id}/holds", {"seat_ids": seat_ids})
        return self._acked_hold(status, body)

    async def best(self, show_id: str, count: int) -> str | None:
        """Hold the best `count` adjacent seats; return the reservation id when acknowledged."""
        status, body = await self.keyed(
            "best", f"/shows/{show_id}/best-available", {"count": count}
        )
        return self._acked_hold(status, body)

    def _acked_hold(self, status: int | None, body: Any) -> str | None:
        if status != 201:
            return None
        seats = [seat["seat_id"] for seat in body["seats"]]
        self.ledger.reservations[body["id"]] = Acked(body["status"], seats)
        return str(body["id"])

    async def pay(self, reservation_id: str) -> bool:
        """Pay a hold by card; tell whether the payment was acknowledged as completed."""
        status, body = await self.keyed(
            "pay",
            f"/reservations/{reservation_id}/payments",
            {"method": "card", "card_number": CARD_OK},
        )
        if status != 201:
            self._maybe(reservation_id, status)
            return False
        payment = body["payment"]
        self.ledger.payments[payment["id"]] = payment["status"]
        acked = self.ledger.reservations[reservation_id]
        acked.status, acked.payment_id = body["reservation_status"], payment["id"]
        return bool(payment["status"] == "completed")

    async def finish(self, kind: str, reservation_id: str) -> None:
        """Release (a hold) or cancel (a reservation); record the answered state."""
        json = {"reason": "reliability"} if kind == "cancel" else None
        status, body = await self.call(
            kind, "POST", f"/reservations/{reservation_id}/{kind}", json=json
        )
        if status == 200:
            self.ledger.reservations[reservation_id].status = body["status"]
        else:
            self._maybe(reservation_id, status)

    def _maybe(self, reservation_id: str, status: int | None) -> None:
        if status is None or status >= 500:
            self.ledger.reservations[reservation_id].uncertain = True

    async def look(self, show_id: str) -> None:
        """Read the seat map, as a customer picking seats does."""
        await self.call("seats", "GET", f"/shows/{show_id}/seats")


def _parse(raw: bytes) -> Any:
    try:
        return json_lib.loads(raw) if raw else None
    except ValueError:
        return None


def connector_pool(addresses: int, per_address: int) -> list[aiohttp.TCPConnector]:
    """Connectors bound to distinct loopback sources (127.0.1.x): the router limits per client."""
    return [
        aiohttp.TCPConnector(
            local_addr=(f"127.0.{1 + i // 250}.{1 + i % 250}", 0), limit=per_address
        )
        for i in range(addresses)
    ]
