"""Service functions against a real database: hold, conflict, confirm, release, extend, expire."""

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
    HoldExpired,
    InvalidReservationState,
    SeatCapExceeded,
    SeatsTaken,
    ShowNotBookable,
    UnknownSeats,
)
from tests.regional_api.reservations.seed import ShowSeed, seed_show

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


def hold(dsn: str, show: ShowSeed, labels: list[str], now: datetime, **kw: object) -> str:
    async def work(session: AsyncSession) -> str:
        reservation = await service.hold_seats(
            session,
            show_id=show.show_id,
            seat_ids=show.ids(*labels),
            user_id=str(kw.get("user_id", "u1")),
            channel="online",
            now=now,
            ttl=TTL,
            max_per_customer=kw.get("cap", 10),  # type: ignore[arg-type]
        )
        return reservation.id

    return run(dsn, work)


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
    return seed_show(regional_dsn)


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

    async def unknown(session: AsyncSession) -> None:
        await service.hold_seats(
            session,
            show_id=show.show_id,
            seat_ids=[999_999],
            user_id="u",
            channel="online",
            now=now,
            ttl=TTL,
        )

    with pytest.raises(UnknownSeats):
        run(regional_dsn, unknown)
    hold(regional_dsn, show, ["A2", "A3"], now, cap=3)
    with pytest.raises(SeatCapExceeded):
        hold(regional_dsn, show, ["B2", "B3"], now, cap=3)
    hold(regional_dsn, show, ["B2"], now, cap=3)


def test_lapsed_hold_is_free_and_confirm_after_expiry(regional_dsn: str, show: ShowSeed) -> None:
    now = datetime.now(UTC)
    first = hold(regional_dsn, show, ["D1", "D2"], now)
    later = now + TTL + timedelta(seconds=1)
    second = hold(regional_dsn, show, ["D2"], later, user_id="u2")

    def confirm(rid: str) -> Callable[[AsyncSession], Awaitable[str]]:
        async def work(session: AsyncSession) -> str:
            return (
                await service.confirm_reservation(session, reservation_id=rid, now=later)
            ).status

        return work

    with pytest.raises(HoldExpired):
        run(regional_dsn, confirm(first))
    assert seat_states(regional_dsn, show)["D1"] == ("held", first)  # nothing half-sold
    assert run(regional_dsn, confirm(second)) == "confirmed"
    assert seat_states(regional_dsn, show)["D2"] == ("sold", second)
    third = hold(regional_dsn, show, ["E1"], now)
    assert run(regional_dsn, confirm(third)) == "confirmed"  # late but still free


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
