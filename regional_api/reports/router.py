"""Report endpoints: staff see their cinemas' figures, admins everything, customers nothing."""

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from common.auth import StaffClaims
from regional_api.cinemas.deps import ManagedCinema
from regional_api.clock import ClockDep
from regional_api.db import SessionDep
from regional_api.reports import service
from regional_api.reservations.deps import ManagedShowIdDep
from schemas.auth import Role
from schemas.reports import DailyReport, MovieReport, ShowReport

router = APIRouter(tags=["reports"])

DateFrom = Annotated[date | None, Query(description="first day, inclusive (default: 30 days)")]
DateTo = Annotated[date | None, Query(description="last day, inclusive (default: today)")]


@router.get("/shows/{show_id}/report", response_model=ShowReport)
async def show_report(
    show_id: ManagedShowIdDep, session: SessionDep, clock: ClockDep
) -> ShowReport:
    """Report one show's capacity, sales, occupancy, revenue by seat type and refunds."""
    figures = await service.show_report(session, show_id=show_id, now=clock.now())
    return ShowReport.model_validate(figures)


@router.get("/cinemas/{cinema_id}/reports/daily", response_model=DailyReport)
async def daily_report(
    _: StaffClaims,
    cinema: ManagedCinema,
    session: SessionDep,
    clock: ClockDep,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> DailyReport:
    """Report a cinema's shows, tickets, occupancy, revenue and refunds per local day."""
    today = _local_today(clock.now(), cinema.timezone)
    period = service.report_period(date_from, date_to, today=today)
    days = await service.daily_report(
        session, cinema_id=cinema.id, timezone=cinema.timezone, period=period
    )
    return DailyReport.model_validate(
        {
            "cinema_id": cinema.id,
            "timezone": cinema.timezone,
            "date_from": period.date_from,
            "date_to": period.date_to,
            "days": days,
        }
    )


@router.get("/reports/movies", response_model=MovieReport)
async def movie_report(
    claims: StaffClaims,
    session: SessionDep,
    clock: ClockDep,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> MovieReport:
    """Report shows, tickets, revenue and refunds per movie (staff: their cinemas only)."""
    period = service.report_period(date_from, date_to, today=clock.now().date())
    cinema_ids = None if claims.role is Role.admin else sorted(claims.cinemas)
    movies = await service.movie_report(session, period=period, cinema_ids=cinema_ids)
    return MovieReport.model_validate(
        {
            "date_from": period.date_from,
            "date_to": period.date_to,
            "cinema_ids": cinema_ids,
            "movies": movies,
        }
    )


def _local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()
