"""Dependencies of the reservation endpoints: settings, id checks and who may see what."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from common.auth import Claims, authenticates, optional_claims, require_claims
from common.db import Conn, HotPool, fetch_one
from common.errors import Forbidden
from common.ids import is_local
from common.routing import lean
from regional_api.clock import get_clock
from regional_api.config import RegionalSettings, SettingsDep, get_settings
from regional_api.db import PoolDep, SessionDep
from regional_api.idempotency.deps import idempotency, once
from regional_api.idempotency.service import Idempotency
from regional_api.onsale.deps import check_admission, get_rooms
from regional_api.reservations import holds
from regional_api.reservations import statements as sql
from regional_api.reservations.errors import ReservationNotFound, ShowNotFound
from regional_api.reservations.full_shows import FullShows
from regional_api.reservations.holds import Terms
from regional_api.reservations.models import Reservation
from schemas.auth import Role, TokenClaims
from schemas.onsale import ADMISSION_PASS_HEADER
from schemas.reservations import ReservationRead

P = ParamSpec("P")
JSON = "application/json"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"  # as `idempotency` declares it


async def valid_show_id(show_id: str, settings: SettingsDep) -> str:
    """The show id of the path, if it is a well-formed show id of this region (else 404)."""
    if not is_local(show_id, "show", settings.region):
        raise ShowNotFound(show_id)
    return show_id


ShowIdDep = Annotated[str, Depends(valid_show_id)]


async def show_cinema(conn: Conn, show_id: str) -> str:
    """The cinema of a show (404 if there is no such show)."""
    show = await fetch_one(conn, sql.SHOW_CINEMA, {"show_id": show_id})
    if show is None:
        raise ShowNotFound(show_id)
    cinema_id: str = show.cinema_id
    return cinema_id


async def managed_show_id(claims: Claims, show_id: ShowIdDep, pool: PoolDep) -> str:
    """The show id, when the caller is an admin or staff of the show's cinema (else 403)."""
    if claims.role is Role.customer:
        raise Forbidden()
    # A connection of its own, given back at once: a counter sale must not keep one while the
    # provider decides (tests/regional_api/payments/test_slow_provider.py).
    async with pool.connection() as conn:
        cinema_id = await show_cinema(conn, show_id)
    if not claims.may_manage(cinema_id):
        raise Forbidden("not staff of this show's cinema")
    return show_id


ManagedShowIdDep = Annotated[str, Depends(managed_show_id)]


# async on purpose: FastAPI runs a plain `def` dependency in its threadpool (a costly hop).
async def get_full_shows(request: Request) -> FullShows:
    """The app's full-show hint (online holds only: box-office sales stay exact)."""
    full: FullShows = request.app.state.full_shows
    return full


FullShowsDep = Annotated[FullShows, Depends(get_full_shows)]


async def seat_cap(
    conn: Conn, claims: TokenClaims, show_id: str, settings: RegionalSettings
) -> int | None:
    """How many seats of the show the caller may hold: staff of its cinema are not capped."""
    if claims.role is Role.admin:
        return None
    if claims.role is Role.staff and claims.may_manage(await show_cinema(conn, show_id)):
        return None
    return settings.max_seats_per_customer_show


@cache
def hold_ttl(seconds: int) -> timedelta:
    """How long a new hold lasts (`RegionalSettings.hold_ttl_seconds`), built once per value."""
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class HoldContext:
    """What the two hold endpoints share: the show, the caller's terms, a connection, the key."""

    show_id: str
    terms: Terms
    conn: Conn
    idem: Idempotency

    async def answer(
        self,
        body: BaseModel,
        place: Callable[Concatenate[Conn, str, Terms, P], Awaitable[ReservationRead]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Response:
        """Place the hold once per Idempotency-Key and answer 201 with it (or the replay)."""

        def write() -> Awaitable[ReservationRead]:
            return place(self.conn, self.show_id, self.terms, *args, **kwargs)

        if self.idem.key is None:  # nothing to store: serialise once, in pydantic-core
            read = await write()
            return Response(read.model_dump_json(), status_code=201, media_type=JSON)
        return await once(
            self.idem,
            self.conn,
            body,
            lambda key: place(
                self.conn, self.show_id, replace(self.terms, key=key), *args, **kwargs
            ),
            lambda stored: holds.replay(self.conn, stored, self.terms),
        )


# FastAPI resolves each dependency with a signature walk of its own (22 % of a hold's samples
# in docs/benchmarks/floor.md): the hot writes resolve one, which calls the checks in turn.


def documented_parameter(name: str, where: str) -> dict[str, Any]:
    """How FastAPI documents a declared `str` path or `str | None` header parameter."""
    if where == "path":
        schema: dict[str, Any] = {"type": "string", "title": name.replace("_", " ").title()}
        return {"name": name, "in": where, "required": True, "schema": schema}
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "title": name}
    return {"name": name, "in": where, "required": False, "schema": schema}


# What `hold_context` reads, documented as when it declared them: it reads them itself, since
# FastAPI's per-request parsing of declared path and header parameters cost more than the
# checks do (docs/benchmarks/floor.md, "App CPU per hold against the floor").
def hold_parameters() -> list[dict[str, Any]]:
    """The path and header parameters of a hold endpoint, for its OpenAPI operation."""
    return [
        documented_parameter("show_id", "path"),
        documented_parameter(ADMISSION_PASS_HEADER, "header"),
        documented_parameter(IDEMPOTENCY_KEY_HEADER, "header"),
    ]


@authenticates(required=True)
async def hold_context(request: Request) -> AsyncIterator[HoldContext]:
    """The context of an online hold of the path's show by the caller (checks in route order)."""
    settings = await get_settings(request)
    show_id = await valid_show_id(request.path_params["show_id"], settings)
    claims = await require_claims(await optional_claims(request))
    now = (await get_clock(request)).now()
    rooms = await get_rooms(request)
    headers = request.headers
    admission_pass = headers.get(ADMISSION_PASS_HEADER)
    check_admission(rooms, admission_pass, show_id=show_id, user_id=claims.sub, now=now)
    key = headers.get(IDEMPOTENCY_KEY_HEADER)
    # Without a key its path is never read (`Idempotency.bind`), and `request.url` is not free.
    idem = (
        await idempotency(request, claims, key)
        if key is not None
        else Idempotency(None, claims.sub, request.scope["path"])
    )
    pool: HotPool = request.app.state.pool  # its connection directly: one context manager less
    async with pool.connection() as conn:
        terms = Terms(
            user_id=claims.sub,
            channel="online",
            now=now,
            ttl=hold_ttl(settings.hold_ttl_seconds),
            cap=await seat_cap(conn, claims, show_id, settings),
            max_extensions=settings.hold_max_extensions,
            full=await get_full_shows(request),
        )
        yield HoldContext(show_id, terms, conn, idem)


HoldContextDep = Annotated[HoldContext, Depends(hold_context, scope="function")]
_hold_context = asynccontextmanager(hold_context)
B = TypeVar("B", bound=BaseModel)
HoldEndpoint = Callable[[B, HoldContext], Awaitable[Response]]


def lean_hold(model: type[B]) -> Callable[[HoldEndpoint[B]], HoldEndpoint[B]]:
    """Serve a hold endpoint's valid JSON bodies without FastAPI's resolution (common.routing)."""

    def mark(endpoint: HoldEndpoint[B]) -> HoldEndpoint[B]:
        async def handler(request: Request, body: B) -> Response:
            async with _hold_context(request) as hold:
                return await endpoint(body, hold)

        return lean(model, handler)(endpoint)

    return mark


def may_see(claims: TokenClaims, reservation: Reservation) -> bool:
    """The owner, staff of the reservation's cinema and admins may see it."""
    return reservation.user_id == claims.sub or claims.may_manage(reservation.cinema_id)


async def visible_reservation(
    reservation_id: str,
    session: SessionDep,
    claims: Claims,
    settings: SettingsDep,
) -> Reservation:
    """The reservation of the path if the caller may see it; 404 otherwise (never 403)."""
    if not is_local(reservation_id, "res", settings.region):
        raise ReservationNotFound(reservation_id)
    reservation = await session.scalar(select(Reservation).where(Reservation.id == reservation_id))
    if reservation is None or not may_see(claims, reservation):
        raise ReservationNotFound(reservation_id)
    return reservation


ReservationDep = Annotated[Reservation, Depends(visible_reservation)]
