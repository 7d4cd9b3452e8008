"""The floor: regional_api's hot statements behind the least a FastAPI + psycopg app does.

`benchmarks/floor_bench.py` serves it beside a real regional_api on the same PostgreSQL, so
every figure of the booking path has a floor measured in the same run (issue 21). It runs the
very same SQL (imported from regional_api, so it follows any change there): `claim_seats` for a
hold, `OPEN_PAYMENT` and `SETTLE` around the same simulated provider for a payment, and for
the show read and the seat map regional_api's own `render` (its state statement, and the
show's layout kept per process as regional_api keeps it). One psycopg pool in autocommit with the hot pool's settings (prepared,
generic plans), a token check remembered per token, no middleware, no dependency chain, no
idempotency keys, no seat cap of its own (claim_seats counts the cap, as for regional_api).

Served by `uvicorn --factory benchmarks.floor:create_app`, configured from the environment once
at startup: FLOOR_DATABASE_URL, FLOOR_JWKS_FILE, FLOOR_REGION, FLOOR_PROVIDER_LATENCY_MS.
"""

import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from common.auth import JwksCache, TokenVerifier
from common.db import HotPool, fetch, fetch_one, make_pool
from common.errors import Unauthorized
from common.ids import new_id
from regional_api.payments import statements as pay_sql
from regional_api.payments.provider import SimulatedProvider, charge_with_timeout
from regional_api.reservations import statements as hold_sql
from regional_api.shows import reads as show_reads
from regional_api.shows.layouts import Layouts
from schemas.auth import TokenClaims

HOLD_TTL = timedelta(minutes=10)
SEAT_CAP = 100_000  # what the benchmark gives regional_api (REGIONAL_MAX_SEATS_PER_CUSTOMER_SHOW)
GUARD = timedelta(seconds=65)  # the provider's timeout plus regional_api's default guard


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, default=str), status, media_type="application/json")


def _refused(status: int, code: str) -> Response:
    return _json(status, {"error": code, "detail": code})


class Floor:
    """What every request needs, built once: pool, token check, provider, region."""

    def __init__(self, pool: HotPool, verifier: TokenVerifier, region: str, latency: float):
        self.pool = pool
        self.verifier = verifier
        self.region = region
        self.provider = SimulatedProvider(timeout_seconds=5.0, latency_seconds=latency)
        self.layouts = Layouts(512)  # the seats of a show, kept as regional_api keeps them

    async def claims(self, request: Request) -> TokenClaims:
        """The caller's claims (a token seen before costs a dict lookup)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized()
        return await self.verifier.verify(token)

    async def hold(self, request: Request, show_id: str) -> Response:
        """`claim_seats` for the body's seats, as regional_api calls it without a key."""
        claims = await self.claims(request)
        seat_ids = sorted({int(seat) for seat in (await request.json())["seat_ids"]})
        now = datetime.now(UTC)
        rid = new_id("res", self.region)
        params = {
            "cap": SEAT_CAP,
            "rid": rid,
            "show_id": show_id,
            "user_id": claims.sub,
            "email": None,
            "channel": "online",
            "deadline": now + HOLD_TTL,
            "now": now,
            "seat_ids": seat_ids,
        }
        async with self.pool.connection() as conn:
            rows = await fetch(conn, hold_sql.CLAIM, params)
        won = [row for row in rows if row.won]
        if not won or len(won) != len(seat_ids):
            return _refused(409, "seats_taken")
        seats = [{"seat_id": r.seat_id, "label": r.label, "price": r.price_minor} for r in won]
        body = {"id": rid, "status": "held", "show_id": show_id, "seats": seats}
        return _json(201, body | {"hold_expires_at": now + HOLD_TTL})

    async def pay(self, request: Request, rid: str) -> Response:
        """Open the payment, charge with nothing held, settle: regional_api's two statements."""
        claims = await self.claims(request)
        card = (await request.json()).get("card_number")
        now = datetime.now(UTC)
        pid = new_id("pay", self.region)
        params = {"rid": rid, "pid": pid, "method": "card", "now": now, "guard": now + GUARD}
        params |= {"payer": claims.sub, "admin": False, "cinemas": []}
        async with self.pool.connection() as conn:
            row = await fetch_one(conn, pay_sql.OPEN_PAYMENT, params)
        if row is None or not (row.allowed and row.sellable) or row.paid or row.pending:
            return _refused(409, "not_payable")
        result = await charge_with_timeout(  # bounded, as regional_api must
            self.provider,
            amount_minor=int(row.amount),
            currency=row.currency,
            method="card",
            card_number=card,
            reference=pid,
        )
        codes = [secrets.token_urlsafe(16) for _ in range(int(row.seats))]
        settle = {"rid": rid, "show_id": row.show_id, "codes": codes, "now": datetime.now(UTC)}
        async with self.pool.connection() as conn:
            sold = await fetch(
                conn, pay_sql.SETTLE, settle | {"pid": pid, "ref": result.provider_ref}
            )
        tickets = [{"code": t.code, "seat_id": t.seat_id, "label": t.seat_label} for t in sold]
        return _json(201, {"payment_id": pid, "reservation_id": rid, "tickets": tickets})

    async def show(self, show_id: str) -> Response:
        """The show read of `GET /shows/{id}`, rendered as regional_api renders it, in autocommit."""
        return await self._read("show", show_id)

    async def seat_map(self, show_id: str) -> Response:
        """The seat map, rendered as regional_api renders it (its state statement, its layout)."""
        return await self._read("seats", show_id)

    async def _read(self, kind: str, show_id: str) -> Response:
        now = datetime.now(UTC)
        async with self.pool.connection() as conn:
            rendered = await show_reads.render(
                conn, self.layouts, kind=kind, show_id=show_id, now=now
            )
        if rendered is None:
            return _refused(404, "show_not_found")
        return Response(rendered[0], media_type="application/json")


def create_app() -> FastAPI:
    """The floor app, configured from FLOOR_* variables."""
    jwks = json.loads(Path(os.environ["FLOOR_JWKS_FILE"]).read_text())
    verifier = TokenVerifier(JwksCache(None, jwks=jwks))
    pool = make_pool(os.environ["FLOOR_DATABASE_URL"], service="floor", size=20)
    latency = float(os.environ.get("FLOOR_PROVIDER_LATENCY_MS", "0")) / 1000
    floor = Floor(pool, verifier, os.environ.get("FLOOR_REGION", "eu-west"), latency)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.detail}, 401)

    async def alive() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/readyz", alive)
    app.add_api_route("/healthz", alive)
    app.add_api_route("/shows/{show_id}/holds", floor.hold, methods=["POST"])
    app.add_api_route("/reservations/{rid}/payments", floor.pay, methods=["POST"])
    app.add_api_route("/shows/{show_id}", floor.show)
    app.add_api_route("/shows/{show_id}/seats", floor.seat_map)
    return app
