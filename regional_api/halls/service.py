"""Halls and their seat maps: create from a layout document, read, replace the layout."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import Conflict
from common.ids import new_id
from regional_api.db import save
from regional_api.halls.layout import Layout, parse_layout
from regional_api.halls.models import Hall, Seat
from regional_api.shows.models import Show, ShowSeat

HALLS_CREATED = Counter("catalog_halls_created_total", "Halls created")
HALL_LAYOUTS_REPLACED = Counter("catalog_hall_layouts_replaced_total", "Hall layouts replaced")


def layout_document(
    *, name: str, rows: Sequence[str], legend: Mapping[str, str], row_labels: Sequence[str] | None
) -> tuple[Layout, dict[str, Any]]:
    """Parse a layout and build the document stored with the hall (with its grid size)."""
    layout = parse_layout(rows, legend, row_labels)
    document = {
        "name": name,
        "rows": list(rows),
        "legend": dict(legend),
        "row_labels": list(layout.row_labels) if row_labels is not None else None,
        "grid_rows": layout.grid_rows,
        "grid_cols": layout.grid_cols,
        "seat_types": layout.seat_types,
        "sellable_types": layout.sellable_types,
    }
    return layout, document


async def _save_hall(session: AsyncSession, hall: Hall, changes: dict[str, Any]) -> None:
    """Apply `changes` and flush in a savepoint; a taken name becomes 409 `hall_name_taken`."""
    name = changes.get("name", hall.name)

    async def extra() -> dict[str, Any]:
        return {"name": name}

    await save(session, hall, changes, code="hall_name_taken", extra=extra)


async def _insert_seats(session: AsyncSession, hall_id: str, layout: Layout) -> None:
    rows = [
        {
            "hall_id": hall_id,
            "row_label": seat.row_label,
            "number": seat.number,
            "label": seat.label,
            "grid_row": seat.grid_row,
            "grid_col": seat.grid_col,
            "seat_type": seat.seat_type,
            "blocked": seat.blocked,
        }
        for seat in layout.seats
    ]
    await session.execute(insert(Seat), rows)


async def create_hall(
    session: AsyncSession,
    *,
    cinema_id: str,
    region: str,
    name: str,
    rows: Sequence[str],
    legend: Mapping[str, str],
    row_labels: Sequence[str] | None,
) -> Hall:
    """Create a hall and its seats from a layout document."""
    layout, document = layout_document(name=name, rows=rows, legend=legend, row_labels=row_labels)
    hall = Hall(
        id=new_id("hall", region),
        cinema_id=cinema_id,
        name=name,
        layout=document,
        seat_count=len(layout.seats),
    )
    await _save_hall(session, hall, {})
    await _insert_seats(session, hall.id, layout)
    HALLS_CREATED.inc()
    return hall


async def get_hall(session: AsyncSession, *, hall_id: str) -> Hall | None:
    """The hall, if it exists."""
    return await session.get(Hall, hall_id)


async def list_halls(session: AsyncSession, *, cinema_id: str) -> list[Hall]:
    """The halls of a cinema, by name."""
    rows = await session.execute(
        select(Hall).where(Hall.cinema_id == cinema_id).order_by(Hall.name, Hall.id)
    )
    return list(rows.scalars())


async def current_seats(session: AsyncSession, *, hall_id: str) -> list[Seat]:
    """The hall's current (not retired) seats in grid order."""
    rows = await session.execute(
        select(Seat)
        .where(Seat.hall_id == hall_id, Seat.retired_at.is_(None))
        .order_by(Seat.grid_row, Seat.grid_col)
    )
    return list(rows.scalars())


async def _show_in_use(session: AsyncSession, hall_id: str, now: datetime) -> str | None:
    query = (
        select(Show.id)
        .where(Show.hall_id == hall_id, Show.status == "scheduled", Show.ends_at > now)
        .order_by(Show.starts_at)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def replace_layout(
    session: AsyncSession,
    *,
    hall: Hall,
    name: str,
    rows: Sequence[str],
    legend: Mapping[str, str],
    row_labels: Sequence[str] | None,
    now: datetime,
) -> Hall:
    """Replace a hall's name and seat map; 409 `hall_in_use` while an upcoming show uses it."""
    layout, document = layout_document(name=name, rows=rows, legend=legend, row_labels=row_labels)
    # The row lock makes a concurrent show creation (which locks the hall too) wait or be seen.
    await session.refresh(hall, with_for_update=True)
    show_id = await _show_in_use(session, hall.id, now)
    if show_id is not None:
        raise Conflict(
            f"hall {hall.id} has an upcoming show; cancel or finish it first",
            code="hall_in_use",
            show_id=show_id,
        )
    referenced = exists().where(ShowSeat.seat_id == Seat.id)
    current = (Seat.hall_id == hall.id) & Seat.retired_at.is_(None)
    await session.execute(delete(Seat).where(current, ~referenced))
    # Past shows keep pointing at their seats: retire those instead of deleting them.
    await session.execute(update(Seat).where(current).values(retired_at=now))
    changes = {"name": name, "layout": document, "seat_count": len(layout.seats), "updated_at": now}
    await _save_hall(session, hall, changes)
    await _insert_seats(session, hall.id, layout)
    HALL_LAYOUTS_REPLACED.inc()
    return hall
