"""Endpoints of halls and their seat maps."""

from itertools import groupby

from fastapi import APIRouter, status

from regional_api.cinemas.deps import CinemaDep, ManagedCinema
from regional_api.clock import ClockDep
from regional_api.config import SettingsDep
from regional_api.db import SessionDep
from regional_api.halls import service
from regional_api.halls.deps import HallDep, ManagedHall
from regional_api.halls.models import Hall, Seat
from schemas.catalog import HallDetail, HallRead, HallRow, HallSeat, HallWrite, SeatType

router = APIRouter(tags=["halls"])


def hall_read(hall: Hall) -> HallRead:
    """The wire form of a hall without seats."""
    return HallRead(
        id=hall.id,
        cinema_id=hall.cinema_id,
        name=hall.name,
        seat_count=hall.seat_count,
        grid_rows=hall.layout.get("grid_rows", 0),
        grid_cols=hall.layout.get("grid_cols", 0),
        seat_types=[SeatType(value) for value in hall.layout.get("seat_types", [])],
        created_at=hall.created_at,
        updated_at=hall.updated_at,
    )


def hall_detail(hall: Hall, seats: list[Seat]) -> HallDetail:
    """The wire form of a hall with its seat map, rows front to back."""
    rows = [
        HallRow(
            label=label,
            grid_row=row_seats[0].grid_row,
            seats=[HallSeat.model_validate(seat) for seat in row_seats],
        )
        for label, group in groupby(seats, key=lambda seat: seat.row_label)
        for row_seats in [list(group)]
    ]
    document = hall.layout
    layout = HallWrite(
        name=document.get("name", hall.name),
        rows=document.get("rows", []),
        legend=document.get("legend", {}),
        row_labels=document.get("row_labels"),
    )
    return HallDetail(**hall_read(hall).model_dump(), layout=layout, rows=rows)


@router.post("/cinemas/{cinema_id}/halls", status_code=status.HTTP_201_CREATED)
async def create_hall(
    body: HallWrite, cinema: ManagedCinema, session: SessionDep, settings: SettingsDep
) -> HallDetail:
    """Create a hall of a cinema from a layout document (admin or the cinema's staff)."""
    hall = await service.create_hall(
        session,
        cinema_id=cinema.id,
        region=settings.region,
        name=body.name,
        rows=body.rows,
        legend=body.legend,
        row_labels=body.row_labels,
    )
    await session.refresh(hall)
    return hall_detail(hall, await service.current_seats(session, hall_id=hall.id))


@router.get("/cinemas/{cinema_id}/halls")
async def list_halls(cinema: CinemaDep, session: SessionDep) -> list[HallRead]:
    """List the halls of a cinema."""
    return [hall_read(hall) for hall in await service.list_halls(session, cinema_id=cinema.id)]


@router.get("/halls/{hall_id}")
async def get_hall(hall: HallDep, session: SessionDep) -> HallDetail:
    """Read a hall with its seat map."""
    return hall_detail(hall, await service.current_seats(session, hall_id=hall.id))


@router.put("/halls/{hall_id}")
async def replace_hall(
    body: HallWrite, hall: ManagedHall, session: SessionDep, clock: ClockDep
) -> HallDetail:
    """Replace a hall's layout (409 `hall_in_use` while an upcoming show uses it)."""
    hall = await service.replace_layout(
        session,
        hall=hall,
        name=body.name,
        rows=body.rows,
        legend=body.legend,
        row_labels=body.row_labels,
        now=clock.now(),
    )
    return hall_detail(hall, await service.current_seats(session, hall_id=hall.id))
