"""Holds, confirmation, release, extension, cancellation and expiry of reservations.

Every seat change is one atomic conditional UPDATE of `show_seats` that locks its rows in
seat order and claims only rows that are free by the availability rule (free, or held with a
lapsed deadline). Hot paths use plain SQL (benchmarks/holds.py measures them).
"""

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from common.ids import new_id, region_of
from regional_api.reservations import metrics
from regional_api.reservations.best_seats import SeatCell, choose_block
from regional_api.reservations.errors import (
    ExtensionRefused,
    HoldExpired,
    InvalidReservationState,
    NoAdjacentSeats,
    ReservationNotFound,
    SeatCapExceeded,
    SeatsTaken,
    ShowNotBookable,
    ShowNotFound,
    UnknownSeats,
)
from regional_api.reservations.models import Reservation

log = logging.getLogger("reservations")

BEST_AVAILABLE_ATTEMPTS = 4

_LOCK_SHOW = text("SELECT pg_advisory_xact_lock_shared(hashtextextended('show:' || :show_id, 0))")
_LOCK_SHOW_AND_CUSTOMER = text(
    "SELECT pg_advisory_xact_lock_shared(hashtextextended('show:' || :show_id, 0)),"
    " pg_advisory_xact_lock(hashtextextended(:user_id || ':' || :show_id, 0))"
)
_LOCK_SHOW_EXCLUSIVE = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('show:' || :show_id, 0))"
)

# The show and, for a capped customer, the seats they already hold or bought in it.
_SHOW_AND_ACTIVE = text("""
SELECT s.cinema_id, s.status, s.starts_at, s.currency,
  (SELECT count(*) FROM reservations r
     JOIN show_seats ss ON ss.reservation_id = r.id AND ss.show_id = r.show_id
    WHERE r.user_id = :user_id AND r.show_id = :show_id
      AND (ss.status = 'sold' OR (ss.status = 'held' AND ss.held_until > :now))) AS active
FROM shows s WHERE s.id = :show_id
""")

_INSERT_RESERVATION = text("""
INSERT INTO reservations (id, show_id, cinema_id, user_id, customer_email, channel, status,
                          hold_expires_at, amount_minor, currency, created_at)
VALUES (:id, :show_id, :cinema_id, :user_id, :email, :channel, 'held', :deadline, 0,
        :currency, :now)
""")

# All or nothing in one statement: rows are locked in seat order, then claimed only if every
# requested row is free by the availability rule (a lapsed hold counts as free).
_CLAIM = text("""
WITH target AS (
  SELECT show_id, seat_id, status, held_until FROM show_seats
  WHERE show_id = :show_id AND seat_id = ANY(CAST(:seat_ids AS bigint[]))
  ORDER BY seat_id FOR UPDATE),
ready AS (
  SELECT count(*) = :n AS ok FROM target
  WHERE status = 'free' OR (status = 'held' AND held_until <= :now))
UPDATE show_seats s SET status = 'held', reservation_id = :rid, held_until = :deadline
FROM target t, ready
WHERE ready.ok AND s.show_id = t.show_id AND s.seat_id = t.seat_id
  AND (s.status = 'free' OR (s.status = 'held' AND s.held_until <= :now))
RETURNING s.seat_id, s.seat_type, s.price_minor
""")

_RECORD_SEATS = text("""
WITH seats AS (
  INSERT INTO reservation_seats (reservation_id, show_id, seat_id, seat_type, price_minor)
  SELECT :rid, :show_id, c.seat_id, c.seat_type, c.price_minor
  FROM unnest(CAST(:seat_ids AS bigint[]), CAST(:seat_types AS text[]),
              CAST(:prices AS integer[])) AS c(seat_id, seat_type, price_minor))
UPDATE reservations SET amount_minor = :amount WHERE id = :rid
""")

_REQUESTED_STATE = text("""
SELECT ss.seat_id, st.label,
  ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= :now) AS free
FROM show_seats ss JOIN seats st ON st.id = ss.seat_id
WHERE ss.show_id = :show_id AND ss.seat_id = ANY(CAST(:seat_ids AS bigint[]))
""")

_SEAT_MAP = text("""
SELECT ss.seat_id, st.grid_row, st.grid_col, ss.seat_type,
  ss.status = 'free' OR (ss.status = 'held' AND ss.held_until <= :now) AS free
FROM show_seats ss JOIN seats st ON st.id = ss.seat_id
WHERE ss.show_id = :show_id
""")

# Sell every seat of the reservation and give each a ticket code, or change nothing.
_SELL = text("""
WITH target AS (
  SELECT show_id, seat_id, status, held_until, reservation_id FROM show_seats
  WHERE show_id = :show_id AND seat_id = ANY(CAST(:seat_ids AS bigint[]))
  ORDER BY seat_id FOR UPDATE),
ready AS (
  SELECT count(*) = :n AS ok FROM target
  WHERE reservation_id = :rid OR status = 'free' OR (status = 'held' AND held_until <= :now)),
sold AS (
  UPDATE show_seats s SET status = 'sold', reservation_id = :rid, held_until = NULL
  FROM target t, ready
  WHERE ready.ok AND s.show_id = t.show_id AND s.seat_id = t.seat_id
    AND (s.reservation_id = :rid OR s.status = 'free'
         OR (s.status = 'held' AND s.held_until <= :now))
  RETURNING s.seat_id)
UPDATE reservation_seats rs SET ticket_code = c.code
FROM unnest(CAST(:seat_ids AS bigint[]), CAST(:codes AS text[])) AS c(seat_id, code), sold
WHERE rs.reservation_id = :rid AND rs.seat_id = c.seat_id AND sold.seat_id = c.seat_id
RETURNING rs.seat_id
""")

# Free the rows this reservation still holds or owns (rows re-claimed by others are untouched).
_FREE = text("""
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = :show_id AND reservation_id = :rid
  ORDER BY seat_id FOR UPDATE)
UPDATE show_seats s SET status = 'free', reservation_id = NULL, held_until = NULL
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id AND s.reservation_id = :rid
""")

_MOVE_DEADLINE = text("""
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE show_id = :show_id AND reservation_id = :rid AND status = 'held'
  ORDER BY seat_id FOR UPDATE)
UPDATE show_seats s SET held_until = :deadline
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id AND s.reservation_id = :rid
""")

_EXPIRE = text("""
WITH lapsed AS (
  SELECT id FROM reservations
  WHERE status = 'held' AND hold_expires_at <= :now
  ORDER BY hold_expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)
UPDATE reservations r SET status = 'expired' FROM lapsed l WHERE r.id = l.id
RETURNING r.id
""")

_FREE_LAPSED = text("""
WITH target AS (
  SELECT show_id, seat_id FROM show_seats
  WHERE reservation_id = ANY(CAST(:ids AS text[])) AND status = 'held' AND held_until <= :now
  ORDER BY show_id, seat_id FOR UPDATE)
UPDATE show_seats s SET status = 'free', reservation_id = NULL, held_until = NULL
FROM target t
WHERE s.show_id = t.show_id AND s.seat_id = t.seat_id
  AND s.reservation_id = ANY(CAST(:ids AS text[])) AND s.status = 'held'
""")


@dataclass(frozen=True, slots=True)
class _HoldContext:
    """What a hold needs to know about its show, checked under the show's shared lock."""

    cinema_id: str
    currency: str
    active_seats: int


async def _open_hold(
    session: AsyncSession,
    *,
    show_id: str,
    user_id: str | None,
    now: datetime,
    count: int,
    max_per_customer: int | None,
) -> _HoldContext:
    """Lock the show (shared) and the customer's seat cap, then check the show and the cap."""
    capped = max_per_customer is not None and user_id is not None
    if capped:
        await session.execute(_LOCK_SHOW_AND_CUSTOMER, {"show_id": show_id, "user_id": user_id})
    else:
        await session.execute(_LOCK_SHOW, {"show_id": show_id})
    params = {"show_id": show_id, "user_id": user_id if capped else None, "now": now}
    row = (await session.execute(_SHOW_AND_ACTIVE, params)).one_or_none()
    if row is None:
        raise ShowNotFound(show_id)
    if row.status != "scheduled":
        raise ShowNotBookable(show_id, "canceled")
    if row.starts_at <= now:
        raise ShowNotBookable(show_id, "started")
    if max_per_customer is not None and row.active + count > max_per_customer:
        raise SeatCapExceeded(max_per_customer, int(row.active))
    return _HoldContext(row.cinema_id, row.currency.strip(), int(row.active))


async def _insert_reservation(
    session: AsyncSession,
    ctx: _HoldContext,
    *,
    show_id: str,
    user_id: str | None,
    customer_email: str | None,
    channel: str,
    now: datetime,
    deadline: datetime,
) -> str:
    region = region_of(show_id)
    if region is None:
        raise ShowNotFound(show_id)
    reservation_id = new_id("res", region)
    await session.execute(
        _INSERT_RESERVATION,
        {
            "id": reservation_id,
            "show_id": show_id,
            "cinema_id": ctx.cinema_id,
            "user_id": user_id,
            "email": customer_email,
            "channel": channel,
            "deadline": deadline,
            "currency": ctx.currency,
            "now": now,
        },
    )
    return reservation_id


async def _claim(
    session: AsyncSession,
    *,
    show_id: str,
    reservation_id: str,
    seat_ids: Sequence[int],
    now: datetime,
    deadline: datetime,
) -> bool:
    """Claim every seat for the reservation and record them, or claim none and say so."""
    params = {
        "show_id": show_id,
        "seat_ids": list(seat_ids),
        "n": len(seat_ids),
        "rid": reservation_id,
        "now": now,
        "deadline": deadline,
    }
    rows = (await session.execute(_CLAIM, params)).all()
    if len(rows) != len(seat_ids):
        return False
    await session.execute(
        _RECORD_SEATS,
        {
            "rid": reservation_id,
            "show_id": show_id,
            "seat_ids": [r.seat_id for r in rows],
            "seat_types": [r.seat_type for r in rows],
            "prices": [r.price_minor for r in rows],
            "amount": sum(r.price_minor for r in rows),
        },
    )
    return True


async def _taken_error(
    session: AsyncSession, *, show_id: str, seat_ids: Sequence[int], now: datetime
) -> SeatsTaken | UnknownSeats:
    """Explain a failed claim: unknown seat ids, or the labels of the seats that are taken."""
    params = {"show_id": show_id, "seat_ids": list(seat_ids), "now": now}
    rows = (await session.execute(_REQUESTED_STATE, params)).all()
    unknown = sorted(set(seat_ids) - {r.seat_id for r in rows})
    if unknown:
        return UnknownSeats(unknown)
    taken = sorted(r.label for r in rows if not r.free) or sorted(r.label for r in rows)
    return SeatsTaken(taken)


async def _load(session: AsyncSession, reservation_id: str, *, lock: bool) -> Reservation:
    query = select(Reservation).where(Reservation.id == reservation_id)
    if lock:
        query = query.with_for_update()
    result = await session.execute(query.execution_options(populate_existing=True))
    reservation = result.scalar_one_or_none()
    if reservation is None:
        raise ReservationNotFound(reservation_id)
    return reservation


async def hold_seats(
    session: AsyncSession,
    *,
    show_id: str,
    seat_ids: Sequence[int],
    user_id: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    max_per_customer: int | None = None,
    customer_email: str | None = None,
) -> Reservation:
    """Hold all the given seats of a show for one reservation, or none (SeatsTaken)."""
    seat_ids = sorted(set(seat_ids))
    ctx = await _open_hold(
        session,
        show_id=show_id,
        user_id=user_id,
        now=now,
        count=len(seat_ids),
        max_per_customer=max_per_customer,
    )
    deadline = now + ttl
    reservation_id = await _insert_reservation(
        session,
        ctx,
        show_id=show_id,
        user_id=user_id,
        customer_email=customer_email,
        channel=channel,
        now=now,
        deadline=deadline,
    )
    claimed = await _claim(
        session,
        show_id=show_id,
        reservation_id=reservation_id,
        seat_ids=seat_ids,
        now=now,
        deadline=deadline,
    )
    if not claimed:
        error = await _taken_error(session, show_id=show_id, seat_ids=seat_ids, now=now)
        if isinstance(error, SeatsTaken):
            metrics.HOLDS.labels("conflict", "seats").inc()
            metrics.CONFLICTS.inc()
        raise error
    metrics.HOLDS.labels("ok", "seats").inc()
    metrics.SEATS_HELD.inc(len(seat_ids))
    return await _load(session, reservation_id, lock=False)


async def _seat_map(session: AsyncSession, *, show_id: str, now: datetime) -> list[SeatCell]:
    rows = await session.execute(_SEAT_MAP, {"show_id": show_id, "now": now})
    return [SeatCell(r.seat_id, r.grid_row, r.grid_col, r.seat_type, r.free) for r in rows]


async def hold_best_available(
    session: AsyncSession,
    *,
    show_id: str,
    count: int,
    seat_type: str | None,
    user_id: str | None,
    channel: str,
    now: datetime,
    ttl: timedelta,
    max_per_customer: int | None = None,
) -> Reservation:
    """Hold the best block of `count` adjacent free seats (retrying if someone was faster)."""
    ctx = await _open_hold(
        session,
        show_id=show_id,
        user_id=user_id,
        now=now,
        count=count,
        max_per_customer=max_per_customer,
    )
    deadline = now + ttl
    reservation_id = await _insert_reservation(
        session,
        ctx,
        show_id=show_id,
        user_id=user_id,
        customer_email=None,
        channel=channel,
        now=now,
        deadline=deadline,
    )
    for _ in range(BEST_AVAILABLE_ATTEMPTS):
        block = choose_block(await _seat_map(session, show_id=show_id, now=now), count, seat_type)
        if block is None:
            break
        claimed = await _claim(
            session,
            show_id=show_id,
            reservation_id=reservation_id,
            seat_ids=block,
            now=now,
            deadline=deadline,
        )
        if claimed:
            metrics.HOLDS.labels("ok", "best_available").inc()
            metrics.SEATS_HELD.inc(count)
            return await _load(session, reservation_id, lock=False)
    metrics.HOLDS.labels("conflict", "best_available").inc()
    metrics.CONFLICTS.inc()
    raise NoAdjacentSeats(count, seat_type)


async def seat_ids_of(session: AsyncSession, reservation_id: str) -> list[int]:
    """The seat ids of a reservation, in order."""
    rows = await session.execute(
        text("SELECT seat_id FROM reservation_seats WHERE reservation_id = :rid ORDER BY seat_id"),
        {"rid": reservation_id},
    )
    return [int(seat_id) for seat_id in rows.scalars()]


async def confirm_reservation(
    session: AsyncSession, *, reservation_id: str, now: datetime
) -> Reservation:
    """Sell the reservation's seats and issue one ticket code per seat (HoldExpired if gone)."""
    reservation = await _load(session, reservation_id, lock=True)
    if reservation.status not in ("held", "expired"):
        raise InvalidReservationState(reservation_id, reservation.status, "confirm")
    seat_ids = await seat_ids_of(session, reservation_id)
    codes = [secrets.token_urlsafe(16) for _ in seat_ids]
    params = {
        "show_id": reservation.show_id,
        "seat_ids": seat_ids,
        "codes": codes,
        "n": len(seat_ids),
        "rid": reservation_id,
        "now": now,
    }
    sold = (await session.execute(_SELL, params)).all()
    if len(sold) != len(seat_ids):
        metrics.CONFIRM_REFUSALS.inc()
        raise HoldExpired(reservation_id)
    reservation.status = "confirmed"
    reservation.confirmed_at = now
    reservation.hold_expires_at = None
    await session.flush()
    metrics.CONFIRMATIONS.inc()
    log.info("reservation confirmed", extra={"fields": {"reservation_id": reservation_id}})
    return reservation


async def _free_seats(session: AsyncSession, reservation: Reservation) -> None:
    await session.execute(_FREE, {"show_id": reservation.show_id, "rid": reservation.id})


async def release_hold(session: AsyncSession, *, reservation_id: str, now: datetime) -> Reservation:
    """Give a held reservation's seats back at once (a lapsed hold is marked expired)."""
    reservation = await _load(session, reservation_id, lock=True)
    if reservation.status != "held":
        raise InvalidReservationState(reservation_id, reservation.status, "release")
    await _free_seats(session, reservation)
    lapsed = reservation.hold_expires_at is not None and reservation.hold_expires_at <= now
    if lapsed:
        reservation.status = "expired"
        metrics.EXPIRIES.labels("release").inc()
    else:
        reservation.status = "canceled"
        reservation.canceled_at = now
        metrics.RELEASES.inc()
    await session.flush()
    return reservation


async def extend_hold(
    session: AsyncSession,
    *,
    reservation_id: str,
    now: datetime,
    extension: timedelta,
    max_extensions: int,
    cap: timedelta,
) -> Reservation:
    """Push a live hold's deadline back, a bounded number of times and never past the cap."""
    reservation = await _load(session, reservation_id, lock=True)
    deadline = reservation.hold_expires_at
    reason = None
    if reservation.status != "held" or deadline is None:
        reason = f"reservation is {reservation.status}"
    elif deadline <= now:
        reason = "hold expired"
    elif reservation.extensions >= max_extensions:
        reason = "no extensions left"
    if reason is None and deadline is not None:
        new_deadline = min(deadline + extension, reservation.created_at + cap)
        if new_deadline <= deadline:
            reason = "hold reached its maximum length"
    if reason is not None or deadline is None:
        metrics.EXTENSIONS.labels("refused").inc()
        raise ExtensionRefused(reservation_id, reason or "not held")
    params = {"show_id": reservation.show_id, "rid": reservation_id, "deadline": new_deadline}
    await session.execute(_MOVE_DEADLINE, params)
    reservation.hold_expires_at = new_deadline
    reservation.extensions += 1
    await session.flush()
    metrics.EXTENSIONS.labels("ok").inc()
    return reservation


async def cancel_reservation(
    session: AsyncSession, *, reservation_id: str, now: datetime, reason: str
) -> Reservation:
    """Cancel a held or confirmed reservation and free its seats at once (refunds are separate)."""
    reservation = await _load(session, reservation_id, lock=True)
    if reservation.status not in ("held", "confirmed"):
        raise InvalidReservationState(reservation_id, reservation.status, "cancel")
    await _free_seats(session, reservation)
    reservation.status = "canceled"
    reservation.canceled_at = now
    reservation.hold_expires_at = None
    await session.flush()
    metrics.CANCELLATIONS.labels(reason).inc()
    log.info(
        "reservation canceled",
        extra={"fields": {"reservation_id": reservation_id, "reason": reason}},
    )
    return reservation


async def expire_lapsed_holds(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Mark up to `limit` lapsed holds expired and free the seats they still hold."""
    ids = list((await session.execute(_EXPIRE, {"now": now, "limit": limit})).scalars())
    if ids:
        await session.execute(_FREE_LAPSED, {"ids": ids, "now": now})
        metrics.EXPIRIES.labels("sweeper").inc(len(ids))
    return len(ids)


async def lock_show_for_cancel(session: AsyncSession, *, show_id: str) -> None:
    """Wait for in-flight holds of the show to finish and keep new ones out until commit."""
    await session.execute(_LOCK_SHOW_EXCLUSIVE, {"show_id": show_id})
