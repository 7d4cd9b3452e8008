"""Holds and reservations: hold, best available, extend, release, read, list, cancel."""

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Response

from common.auth import Claims, StaffClaims
from common.errors import Unprocessable
from regional_api.clock import ClockDep
from regional_api.config import RegionalSettings, SettingsDep
from regional_api.db import PoolDep, SessionDep
from regional_api.reservations import cancellation, holds, queries, service
from regional_api.reservations.deps import (
    FullShowsDep,
    HoldContextDep,
    ManagedShowIdDep,
    ReservationDep,
    hold_parameters,
    lean_hold,
)
from regional_api.reservations.models import Reservation
from schemas.auth import Role
from schemas.pagination import MAX_PAGE_SIZE, KeysetPage, Page, decode_cursor
from schemas.reservations import (
    BestAvailableCreate,
    HoldCreate,
    ReservationCancel,
    ReservationRead,
    ReservationStatus,
    ShowCancel,
    ShowCancelRead,
)

router = APIRouter(tags=["reservations"])
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
UserIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


async def _read(
    session: SessionDep, reservation: Reservation, now: datetime, settings: RegionalSettings
) -> ReservationRead:
    return await queries.reservation_read(
        session, reservation.id, now=now, max_extensions=settings.hold_max_extensions
    )


def _hold_route(path: str, refusals: str) -> Callable[[Endpoint], Endpoint]:
    """Declare a hold endpoint: 201 with the new hold; a waiting-room show needs its pass."""
    return router.post(
        path,
        status_code=201,
        response_model=None,
        openapi_extra={"parameters": hold_parameters()},
        responses={
            201: {"model": ReservationRead, "description": "held"},
            403: {"description": "queue_required: the show sells through its waiting room"},
            409: {"description": refusals},
        },
    )


@_hold_route("/shows/{show_id}/holds", "seats taken, show canceled or started, seat cap")
@lean_hold(HoldCreate)
async def hold_seats(body: HoldCreate, hold: HoldContextDep) -> Response:
    """Hold the given seats of a show, all or none, until the hold deadline."""
    return await hold.answer(body, holds.place_hold, body.seat_ids)


@_hold_route(
    "/shows/{show_id}/best-available", "no adjacent seats, show canceled or started, seat cap"
)
@lean_hold(BestAvailableCreate)
async def hold_best_available(body: BestAvailableCreate, hold: HoldContextDep) -> Response:
    """Hold the best block of N adjacent free seats of a show."""
    return await hold.answer(body, holds.place_best_available, body.count, body.seat_type)


@router.get("/reservations/{reservation_id}")
async def get_reservation(
    reservation: ReservationDep, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> ReservationRead:
    """Read a reservation (its owner, staff of its cinema, admins)."""
    return await _read(session, reservation, clock.now(), settings)


@router.post("/reservations/{reservation_id}/extend")
async def extend_hold(
    reservation: ReservationDep, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> ReservationRead:
    """Push a live hold's deadline back (a bounded number of times, up to the hold cap)."""
    now = clock.now()
    await service.extend_hold(
        session,
        reservation_id=reservation.id,
        now=now,
        extension=timedelta(seconds=settings.hold_extension_seconds),
        max_extensions=settings.hold_max_extensions,
        cap=timedelta(seconds=settings.hold_cap_seconds),
    )
    return await _read(session, reservation, now, settings)


@router.post("/reservations/{reservation_id}/release")
async def release_hold(
    reservation: ReservationDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    full: FullShowsDep,
) -> ReservationRead:
    """Give a held reservation's seats back at once."""
    now = clock.now()
    await service.release_hold(session, reservation_id=reservation.id, now=now, full=full)
    return await _read(session, reservation, now, settings)


@router.post("/reservations/{reservation_id}/cancel")
async def cancel_reservation(
    reservation: ReservationDep,
    session: SessionDep,
    claims: Claims,
    clock: ClockDep,
    settings: SettingsDep,
    full: FullShowsDep,
    body: ReservationCancel | None = None,
) -> ReservationRead:
    """Cancel a reservation and refund it: customers their confirmed ones before the cut-off."""
    now = clock.now()
    by_staff = claims.may_manage(reservation.cinema_id)
    if not by_staff:
        cancellation.check_customer_cancel(
            reservation,
            show_starts_at=await cancellation.show_start(session, reservation.show_id),
            now=now,
            cutoff_minutes=settings.cancel_cutoff_minutes,
        )
    await cancellation.cancel_and_refund(
        session,
        reservation_id=reservation.id,
        now=now,
        reason="staff" if by_staff else "customer",
        note=body.reason if body else "",
        full=full,
    )
    return await _read(session, reservation, now, settings)


async def page_key(
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> tuple[datetime, str] | None:
    """The `before` page key of a keyset-paged list, decoded (422 if it is not one)."""
    try:
        return decode_cursor(before) if before is not None else None
    except ValueError:
        raise Unprocessable("before is not a page key", code="invalid_cursor") from None


PageKeyDep = Annotated[tuple[datetime, str] | None, Depends(page_key)]
KeyedOffset = Annotated[int, Query(ge=0, le=MAX_PAGE_SIZE)]


HistoryPage = Callable[[str, Sequence[str] | None], Awaitable[KeysetPage[ReservationRead]]]


async def history_page(
    pool: PoolDep,
    clock: ClockDep,
    settings: SettingsDep,
    before: PageKeyDep,
    limit: Limit = 50,
    offset: KeyedOffset = 0,
) -> HistoryPage:
    """The requested keyset page of a user's reservations here, to read for a user and cinemas."""

    async def read(user_id: str, cinemas: Sequence[str] | None) -> KeysetPage[ReservationRead]:
        async with pool.connection() as conn:  # autocommit: no BEGIN/COMMIT for a read
            return await queries.user_reservations(
                conn,
                user_id=user_id,
                cinemas=cinemas,
                limit=limit,
                offset=offset,
                before=before,
                now=clock.now(),
                max_extensions=settings.hold_max_extensions,
            )

    return read


HistoryPageDep = Annotated[HistoryPage, Depends(history_page)]


@router.get("/me/reservations")
async def my_reservations(claims: Claims, page: HistoryPageDep) -> KeysetPage[ReservationRead]:
    """List the caller's reservations in this region, newest first, paged by key."""
    return await page(claims.sub, None)


@router.get("/customers/{user_id}/reservations")
async def customer_reservations(
    user_id: UserIdPath, claims: StaffClaims, page: HistoryPageDep
) -> KeysetPage[ReservationRead]:
    """List a customer's reservations here, newest first (admins: all; staff: their cinemas')."""
    return await page(user_id, None if claims.role is Role.admin else claims.cinemas)


@router.get("/shows/{show_id}/reservations")
async def show_reservations(
    show_id: ManagedShowIdDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    status: ReservationStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ReservationRead]:
    """List a show's reservations, newest first (staff of its cinema, admins)."""
    return await queries.show_reservations(
        session,
        show_id=show_id,
        status=status.value if status else None,
        limit=limit,
        offset=offset,
        now=clock.now(),
        max_extensions=settings.hold_max_extensions,
    )


@router.post("/shows/{show_id}/cancel")
async def cancel_show(
    show_id: ManagedShowIdDep,
    session: SessionDep,
    clock: ClockDep,
    full: FullShowsDep,
    body: ShowCancel | None = None,
) -> ShowCancelRead:
    """Cancel a show: every held or confirmed reservation is canceled and refunded."""
    done = await cancellation.cancel_show(
        session,
        show_id=show_id,
        now=clock.now(),
        reason=body.reason if body else "",
        full=full,
    )
    return ShowCancelRead(
        show_id=done.show_id,
        status="canceled",
        canceled_reservations=done.canceled_reservations,
        refunded_reservations=done.refunded_reservations,
        refunded_minor=done.refunded_minor,
    )
