"""The reservation functions the endpoints call, on a real database: hold, conflict, release,
extend, expire."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import make_engine, make_sessionmaker
from regional_api.reservations import service
from regional_api.reservations.errors import (
    ExtensionRefused,
    InvalidReservationState,
    SeatCapExceeded,
    SeatsTaken,
    ShowNotBookable,
    UnknownSeats,
)
from tests.regional_api.factories import ShowSeed, grid_rows, place, seed_show

T = TypeVar("T")
TTL = timedelta(minutes=10)


def run(dsn: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction (rolled back if it raises)."""

    async def main() -> T:
        engine = make_engine(dsn, service="test", pool_size=1, max_overflow=0)
        try:
            async with make_sessionmaker(engine)() as session:
                try:
                    result = await work(session)
                    await session.commit()
                    return result
                except BaseException:
                    await session.rollback()
                    raise
        finally:
            await engine.dispose()

    return asyncio.run(main())


def hold(
    dsn: str,
    show: ShowSeed,
    labels: list[str],
    now: datetime,
    *,
    user_id: str = "u1",
    cap: int = 10,
) -> str:
    """Hold seats as the hold endpoint does; returns the reservation id."""
    placed = place(
        dsn,
        show_id=show.show_id,
        seat_ids=show.ids(*labels),
        user_id=user_id,
        now=now,
        ttl=TTL,
        cap=cap,
    )
    return placed.id


def seat_states(dsn: str, show: ShowSeed) -> dict[str, tuple[str, str | None]]:
    async def work(session: AsyncSession) -> dict[str, tuple[str, str | None]]:
        rows = await session.execute(
            text(
                "SELECT st.label, ss.status, ss.reservation_id FROM show_seats ss"
                " JOIN seats st ON st.id = ss.seat_id WHERE ss.show_id = :s"
            ),
            {"s": show.show_id},
        )
        return {r.label: (r.status, r.reservation_id) for r in rows}

    return run(dsn, work)


@pytest.fixture
def show(regional_dsn: str) -> ShowSeed:
    return seed_show(regional_dsn, rows=grid_rows())


def test_hold_is_all_or_nothing(regional_dsn: str, show: ShowSeed) -> None:
    now = datetime.now(UTC)
    first = hold(regional_dsn, show, ["C3", "C4"], now)
    with pytest.raises(SeatsTaken) as taken:
        hold(regional_dsn, show, ["C4", "C5"], now, user_id="u2")
    assert taken.value.extra["seats"] == ["C4"]
    states = seat_states(regional_dsn, show)
    assert states["C3"] == ("held", first)
    assert states["C4"] == ("held", first)
    assert states["C5"] == ("free", None)


def test_unknown_seats_and_cap(regional_dsn: str, show: ShowSeed) -> None:
    now = datetime.now(UTC)

    with pytest.raises(UnknownSeats):
        place(regional_dsn, show_id=show.show_id, seat_ids=[999_999], user_id="u", now=now, ttl=TTL)
    hold(regional_dsn, show, ["A2", "A3"], now, cap=3)
    with pytest.raises(SeatCapExceeded):
        hold(regional_dsn, show, ["B2", "B3"], now, cap=3)
    hold(regional_dsn, show, ["B2"], now, cap=3)


def test_lapsed_hold_is_free(regional_dsn: str, show: ShowSeed) -> None:
    """A seat of a hold past its deadline may be held again; the rest of that hold is untouched.

    Paying such holds (sold while the seats are free, hold_expired once one is taken) goes through
    the payment endpoint: tests/regional_api/payments/test_payments.py.
    """
    now = datetime.now(UTC)
    first = hold(regional_dsn, show, ["D1", "D2"], now)
    with pytest.raises(SeatsTaken):
        hold(regional_dsn, show, ["D2"], now + TTL - timedelta(seconds=1), user_id="u2")
    second = hold(regional_dsn, show, ["D2"], now + TTL, user_id="u2")  # free at its deadline
    states = seat_states(regional_dsn, show)
    assert states["D1"] == ("held", first)
    assert states["D2"] == ("held", second)


def test_release_extend_expire(regional_dsn: str, show: ShowSeed) -> None:
    now = datetime.now(UTC)
    rid = hold(regional_dsn, show, ["F1"], now)

    def extend(at: datetime) -> datetime | None:
        async def work(session: AsyncSession) -> datetime | None:
            res = await service.extend_hold(
                session,
                reservation_id=rid,
                now=at,
                extension=timedelta(minutes=5),
                max_extensions=2,
                cap=timedelta(minutes=18),
            )
            return res.hold_expires_at

        return run(regional_dsn, work)

    assert extend(now) == now + TTL + timedelta(minutes=5)
    assert extend(now) == now + timedelta(minutes=18)  # capped
    with pytest.raises(ExtensionRefused):
        extend(now)

    async def sweep(session: AsyncSession) -> int:
        return await service.expire_lapsed_holds(
            session, now=now + timedelta(minutes=19), limit=100
        )

    assert run(regional_dsn, sweep) == 1
    assert seat_states(regional_dsn, show)["F1"] == ("free", None)
    other = hold(regional_dsn, show, ["F2"], now)

    async def release(session: AsyncSession) -> str:
        return (await service.release_hold(session, reservation_id=other, now=now)).status

    assert run(regional_dsn, release) == "canceled"
    with pytest.raises(InvalidReservationState):
        run(regional_dsn, release)


def test_show_started_refuses_holds(regional_dsn: str, show: ShowSeed) -> None:
    with pytest.raises(ShowNotBookable):
        hold(regional_dsn, show, ["A5"], datetime.now(UTC) + timedelta(days=2))
