"""On-sale endpoints: admins announce them; customers join the line and watch their place."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from common.auth import AdminClaims, Claims, optional_claims, require_claims
from common.db import HotPool
from common.routing import lean_bodiless
from regional_api.clock import Clock, ClockDep
from regional_api.config import get_settings
from regional_api.db import PoolDep
from regional_api.movies.deps import MovieDep
from regional_api.onsale import passes, rooms, service
from regional_api.onsale.batches import JoinBatches, JoinsDep
from regional_api.onsale.deps import LineTicketInvalid, RoomsDep
from regional_api.onsale.polls import POLLS, STATES
from regional_api.onsale.rooms import WaitingRooms
from regional_api.reservations.deps import ShowIdDep, valid_show_id
from regional_api.reservations.errors import ShowNotFound
from schemas.auth import TokenClaims
from schemas.errors import ErrorBody
from schemas.onsale import (
    LINE_TICKET_HEADER,
    LineProgress,
    LineStatus,
    OnSaleMovieRead,
    OnSaleRead,
    OnSaleSet,
)

router = APIRouter(tags=["on-sales"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such show, or no on-sale"}
}


@router.put("/shows/{show_id}/onsale", response_model=OnSaleRead, responses=_NOT_FOUND)
async def set_show_onsale(
    show_id: ShowIdDep, body: OnSaleSet, _: AdminClaims, pool: PoolDep, clock: ClockDep
) -> OnSaleRead:
    """Announce a show's on-sale: its opening, and a waiting room in front of its seats."""
    now = clock.now()
    async with pool.connection() as conn:
        if not await service.set_onsale(conn, show_id=show_id, body=body, now=now):
            raise ShowNotFound(show_id)
        return await service.read_onsale(conn, show_id=show_id, now=now)


@router.put("/movies/{movie_id}/onsale", response_model=OnSaleMovieRead)
async def set_movie_onsale(
    movie: MovieDep, body: OnSaleSet, _: AdminClaims, pool: PoolDep, clock: ClockDep
) -> OnSaleMovieRead:
    """Announce the same on-sale for every upcoming show of a movie in this region."""
    now = clock.now()
    async with pool.connection() as conn, conn.transaction():
        shows = await service.movie_shows(conn, movie_id=movie.id, now=now)
        for show_id in shows:
            await service.set_onsale(conn, show_id=show_id, body=body, now=now)
    return OnSaleMovieRead(movie_id=movie.id, show_ids=shows)


@router.delete("/shows/{show_id}/onsale", status_code=204, responses=_NOT_FOUND)
async def drop_show_onsale(show_id: ShowIdDep, _: AdminClaims, pool: PoolDep) -> Response:
    """End a show's on-sale: holds need no pass any more, the line is gone."""
    async with pool.connection() as conn:
        await service.drop_onsale(conn, show_id=show_id)
    return Response(status_code=204)


@router.get("/shows/{show_id}/onsale", response_model=OnSaleRead, responses=_NOT_FOUND)
async def read_show_onsale(show_id: ShowIdDep, pool: PoolDep, clock: ClockDep) -> OnSaleRead:
    """An on-sale and its line, live: waiting, admitted, admission rate, seats sold and free."""
    async with pool.connection() as conn:
        return await service.read_onsale(conn, show_id=show_id, now=clock.now())


async def _lean_join(request: Request) -> Response:
    """A join without FastAPI's resolution: `join_line`'s checks, in its order, and answer."""
    settings = await get_settings(request)
    show_id = await valid_show_id(request.path_params["show_id"], settings)
    claims = await require_claims(await optional_claims(request))
    state = request.app.state
    status = await _join(show_id, claims, state.pool, state.clock, state.waiting_rooms, state.joins)
    return Response(status.model_dump_json(), media_type="application/json")


@router.post("/shows/{show_id}/line", response_model=LineStatus, responses=_NOT_FOUND)
@lean_bodiless(_lean_join)
async def join_line(
    show_id: ShowIdDep,
    claims: Claims,
    pool: PoolDep,
    clock: ClockDep,
    rooms: RoomsDep,
    joins: JoinsDep,
) -> LineStatus:
    """Join a show's waiting room (again: keeps the place) and say where the caller stands."""
    return await _join(show_id, claims, pool, clock, rooms, joins)


async def _join(
    show_id: str,
    claims: TokenClaims,
    pool: HotPool,
    clock: Clock,
    rooms: WaitingRooms,
    joins: JoinBatches,
) -> LineStatus:
    now, secret = clock.now(), await _secret(rooms, pool)
    return await service.join(
        joins,
        show_id=show_id,
        user_id=claims.sub,
        now=now,
        secret=secret,
        line=rooms.fresh(show_id),
    )


@router.delete("/shows/{show_id}/line", status_code=204)
async def leave_line(show_id: ShowIdDep, claims: Claims, pool: PoolDep) -> Response:
    """Leave a show's waiting room (an admitted customer's window goes to the next in line)."""
    async with pool.connection() as conn:
        await service.leave(conn, show_id=show_id, user_id=claims.sub)
    return Response(status_code=204)


@router.get("/shows/{show_id}/line", response_model=LineStatus)
async def my_place(
    show_id: ShowIdDep,
    claims: Claims,
    pool: PoolDep,
    clock: ClockDep,
    rooms: RoomsDep,
    ticket: Annotated[str | None, Header(alias=LINE_TICKET_HEADER)] = None,
) -> LineStatus:
    """Where the caller stands in a show's waiting room; the admission pass once admitted."""
    # With a ticket the poll is mostly answered before this endpoint (`onsale/polls.py`).
    now, line = clock.now(), rooms.fresh(show_id)
    if ticket is not None and line is not None:
        valid, number = passes.ticket_number(
            rooms.secret, ticket, show_id=show_id, user_id=claims.sub
        )
        if not valid:
            POLLS.labels("refused").inc()
            raise LineTicketInvalid(show_id)
        rank = rooms.ranked(show_id, claims.sub, number)
        status = service.place_from_line(line, show_id=show_id, rank=rank, ticket=ticket, now=now)
        if status is not None:
            POLLS.labels("memory").inc()
            return status
    POLLS.labels("database").inc()
    secret = await _secret(rooms, pool)
    async with pool.connection() as conn:
        return await service.place_in_line(
            conn, show_id=show_id, user_id=claims.sub, now=now, secret=secret, line=line
        )


@router.get("/shows/{show_id}/line/state", response_model=LineProgress, responses=_NOT_FOUND)
async def line_state(show_id: ShowIdDep, pool: PoolDep, clock: ClockDep) -> LineProgress:
    """A line's public state: each customer works out its place from its ticket's line number."""
    # Mostly answered before this endpoint, from the replica's counters (`onsale/polls.py`).
    STATES.labels("database").inc()
    async with pool.connection() as conn:
        state = await rooms.read_progress(conn, show_id=show_id, now=clock.now())
    if state is None:
        raise ShowNotFound(show_id)
    return state


async def _secret(rooms: RoomsDep, pool: PoolDep) -> bytes:
    """The passes' secret (read now if the replica started while the database was down)."""
    if not rooms.secret:
        await rooms.load(pool)
    return rooms.secret
