"""A state machine books through the regional app's endpoints and checks the database against a
model after every step.

Holds, best available, extend, release, payments and cancellations are HTTP requests to the
real app (`create_app` with its lifespan, in-process over `httpx.ASGITransport`, on the test's
database); expiry is the app's own sweeper (`sweeper.sweep_once`). The app's clock is stopped
and moved by the test. The app keeps its full-show hint (`app.state.full_shows`, its TTL longer
than any example), so the model also checks that the hint never refuses a hold the database
would grant.
"""

import asyncio
import os
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from common.db import Conn, fetch
from harness.tokens import TestIssuer
from regional_api.reservations.sweeper import sweep_once
from schemas.auth import Role
from tests.regional_api.factories import GOOD_CARD, ShowSeed, grid_rows, seed_show
from tests.regional_api.reservations.conftest import make_app
from tests.regional_api.reservations.stateful_model import (
    CAP,
    CUSTOMERS,
    EXCLUDED_TYPES,
    EXTENSION,
    MAX_EXTENSIONS,
    RESERVATIONS_SQL,
    SEAT_CAP,
    SEATS_SQL,
    STAFF,
    TTL,
    Cell,
    Owner,
    Res,
    StoppedClock,
)
from tests.regional_api.served import fast_provider

# CI runs 12; a longer search finds subtler bugs (docs/reliability.md, the booking rules).
EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "12"))


class Reservations(RuleBasedStateMachine):
    """Requests to the app, one at a time like customers' clicks, checked against a model."""

    # One loop, one app (lifespan entered) and one reading connection for the whole test; each
    # example seeds its own show and gives the app a fresh stopped clock.
    dsn = ""
    loop: asyncio.AbstractEventLoop
    app: FastAPI
    http: httpx.AsyncClient
    issuer: TestIssuer
    db: Conn  # autocommit, for the checks only

    def __init__(self) -> None:
        super().__init__()
        self.show: ShowSeed = seed_show(self.dsn, rows=grid_rows(2, 4, None))
        self.clock = StoppedClock(datetime.now(UTC))
        self.app.state.clock = self.clock
        self.cells = {cell.seat_id: cell for cell in self.read_cells()}
        self.reservations: dict[str, Res] = {}
        self.owners: dict[int, Owner] = {}
        self.headers = {user: self.issuer.headers(sub=user) for user in CUSTOMERS}
        self.headers[STAFF] = self.issuer.headers(
            sub=STAFF, role=Role.staff, cinemas=(self.show.cinema_id,)
        )

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def teardown(self) -> None:
        # Examples share the database: expire every hold left so the next sweep counts its own.
        self.clock.advance(timedelta(days=365))
        self.loop.run_until_complete(sweep_once(self.app))

    def call(self, path: str, user: str, body: Any = None) -> httpx.Response:
        """POST to the app as `user`."""
        request = self.http.post(path, json=body, headers=self.headers[user])
        return self.loop.run_until_complete(request)

    def read(self, query: str) -> list[Any]:
        """The rows of a check's query about this example's show."""
        return self.loop.run_until_complete(fetch(self.db, query, {"s": self.show.show_id}))

    def read_cells(self) -> list[Cell]:
        return [
            Cell(r.seat_id, r.grid_row, r.grid_col, r.seat_type, r.price_minor)
            for r in self.read(SEATS_SQL)
        ]

    def free(self, seat: int) -> bool:
        owner = self.owners.get(seat)
        return owner is None or (
            owner.status == "held" and owner.until is not None and owner.until <= self.now
        )

    def active_seats(self, user: str) -> int:
        """Seats the customer holds (live) or bought: what the seat cap counts."""
        return sum(
            len(r.seats)
            for r in self.reservations.values()
            if r.user == user
            and (
                r.status == "confirmed"
                or (r.status == "held" and r.deadline is not None and r.deadline > self.now)
            )
        )

    def over_cap(self, user: str, count: int) -> bool:
        return user != STAFF and self.active_seats(user) + count > SEAT_CAP

    def has_block(self, count: int) -> bool:
        """Whether some row has `count` adjacent free seats best available may offer."""
        rows: dict[int, list[Cell]] = {}
        for cell in sorted(self.cells.values(), key=lambda c: (c.row, c.col)):
            rows.setdefault(cell.row, []).append(cell)
        for cells in rows.values():
            run = 0
            for cell in cells:
                fits = self.free(cell.seat_id) and cell.seat_type not in EXCLUDED_TYPES
                run = run + 1 if fits else 0
                if run >= count:
                    return True
        return False

    def release_seats(self, rid: str) -> None:
        for seat, owner in list(self.owners.items()):
            if owner.rid == rid:
                del self.owners[seat]

    def take(self, body: dict[str, Any], user: str, seats: frozenset[int]) -> None:
        assert body["status"] == "held"
        assert body["amount_minor"] == sum(self.cells[seat].price for seat in seats)
        deadline = self.now + TTL
        assert datetime.fromisoformat(body["hold_expires_at"]) == deadline
        rid = body["id"]
        self.reservations[rid] = Res(rid, user, seats, "held", self.now, deadline)
        for seat in seats:
            self.owners[seat] = Owner(rid, "held", deadline)

    @rule(user=st.sampled_from(CUSTOMERS), picks=st.sets(st.integers(0, 7), min_size=1, max_size=4))
    def hold(self, user: str, picks: set[int]) -> None:
        ids = sorted(self.cells)
        self.hold_exactly(user, frozenset(ids[i] for i in picks))

    @precondition(lambda self: any(self.free(seat) for seat in self.cells))
    @rule()
    def hold_the_rest(self) -> None:
        """Staff fill the show: the next best-available learns the full-show hint."""
        self.hold_exactly(STAFF, frozenset(s for s in self.cells if self.free(s)))

    def hold_exactly(self, user: str, seats: frozenset[int]) -> None:
        refusal = None
        if not all(self.free(seat) for seat in seats):
            refusal = "seats_taken"
        elif self.over_cap(user, len(seats)):
            refusal = "seat_cap_exceeded"
        answer = self.call(f"/shows/{self.show.show_id}/holds", user, {"seat_ids": sorted(seats)})
        if refusal is not None:
            assert (answer.status_code, answer.json()["error"]) == (409, refusal), answer.text
            return
        assert answer.status_code == 201, answer.text
        self.take(answer.json(), user, seats)

    @rule(user=st.sampled_from((*CUSTOMERS, STAFF)), count=st.integers(1, 3))
    def best_available(self, user: str, count: int) -> None:
        refusal = None
        if not self.has_block(count):
            refusal = "no_adjacent_seats"
        elif self.over_cap(user, count):
            refusal = "seat_cap_exceeded"
        answer = self.call(f"/shows/{self.show.show_id}/best-available", user, {"count": count})
        if refusal is not None:
            assert (answer.status_code, answer.json()["error"]) == (409, refusal), answer.text
            return
        assert answer.status_code == 201, answer.text
        seats = frozenset(seat["seat_id"] for seat in answer.json()["seats"])
        cells = sorted((self.cells[seat] for seat in seats), key=lambda c: c.col)
        assert len(seats) == count
        assert all(self.free(seat) for seat in seats)
        assert len({c.row for c in cells}) == 1  # one row, side by side
        assert [c.col for c in cells] == list(range(cells[0].col, cells[0].col + count))
        self.take(answer.json(), user, seats)

    def pick(self, data: st.DataObject) -> Res:
        # By creation order: ids are random, so sorting them would make a replayed example
        # pick a different reservation (hypothesis then reports flaky data generation).
        return self.reservations[data.draw(st.sampled_from(list(self.reservations)))]

    def refused(self, answer: httpx.Response, code: str) -> None:
        assert (answer.status_code, answer.json()["error"]) == (409, code), answer.text

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def extend(self, data: st.DataObject) -> None:
        res = self.pick(data)
        answer = self.call(f"/reservations/{res.id}/extend", res.user)
        new = None
        if (
            res.status == "held"
            and res.deadline
            and res.deadline > self.now
            and res.extensions < MAX_EXTENSIONS
        ):
            new = min(res.deadline + EXTENSION, res.created + CAP)
            new = new if new > res.deadline else None
        if new is None:
            self.refused(answer, "extension_refused")
            return
        assert answer.status_code == 200, answer.text
        assert datetime.fromisoformat(answer.json()["hold_expires_at"]) == new
        res.deadline, res.extensions = new, res.extensions + 1
        for owner in self.owners.values():
            if owner.rid == res.id:
                owner.until = new

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        res = self.pick(data)
        answer = self.call(f"/reservations/{res.id}/release", res.user)
        if res.status != "held":
            self.refused(answer, "invalid_reservation_state")
            return
        assert answer.status_code == 200, answer.text
        lapsed = res.deadline is not None and res.deadline <= self.now
        res.status = "expired" if lapsed else "canceled"
        assert answer.json()["status"] == res.status
        self.release_seats(res.id)

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        res = self.pick(data)
        card = {"method": "card", "card_number": GOOD_CARD}
        answer = self.call(f"/reservations/{res.id}/payments", res.user, card)
        ours = all(self.free(seat) or self.owners[seat].rid == res.id for seat in res.seats)
        if res.paid:
            self.refused(answer, "already_paid")
            return
        if res.status not in ("held", "expired"):
            self.refused(answer, "reservation_not_payable")
            return
        if not ours:
            self.refused(answer, "hold_expired")
            return
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["reservation_status"] == "confirmed"
        assert body["payment"]["amount_minor"] == sum(self.cells[s].price for s in res.seats)
        assert {ticket["seat_id"] for ticket in body["tickets"]} == res.seats
        res.status, res.deadline, res.paid = "confirmed", None, True
        for seat in res.seats:
            self.owners[seat] = Owner(res.id, "sold", None)

    @precondition(lambda self: self.reservations)
    @rule(data=st.data(), by_staff=st.booleans())
    def cancel(self, data: st.DataObject, by_staff: bool) -> None:
        res = self.pick(data)
        caller = STAFF if by_staff else res.user
        answer = self.call(f"/reservations/{res.id}/cancel", caller)
        # Customers cancel only what they bought (a hold is released); staff also cancel holds.
        allowed = ("held", "confirmed") if caller == STAFF else ("confirmed",)
        if res.status not in allowed:
            self.refused(answer, "invalid_reservation_state")
            return
        assert answer.status_code == 200, answer.text
        res.status, res.deadline = "canceled", None
        self.release_seats(res.id)

    @rule(minutes=st.integers(1, 12))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    def deadlines_ahead(self) -> list[datetime]:
        return sorted(
            {
                r.deadline
                for r in self.reservations.values()
                if r.status == "held" and r.deadline and r.deadline > self.now
            }
        )

    @precondition(lambda self: self.deadlines_ahead())
    @rule(data=st.data())
    def advance_to_a_deadline(self, data: st.DataObject) -> None:
        """Stop the clock exactly on a hold's deadline: the edge of the availability rule."""
        self.clock.advance(data.draw(st.sampled_from(self.deadlines_ahead())) - self.now)

    @rule()
    def sweep(self) -> None:
        expired = self.loop.run_until_complete(sweep_once(self.app))
        lapsed = [
            r
            for r in self.reservations.values()
            if r.status == "held" and r.deadline is not None and r.deadline <= self.now
        ]
        assert expired == len(lapsed)
        for res in lapsed:
            res.status = "expired"
            for seat, owner in list(self.owners.items()):
                if owner.rid == res.id and owner.status == "held":
                    del self.owners[seat]

    @invariant()
    def database_matches_model(self) -> None:
        for row in self.read(SEATS_SQL):
            owner = self.owners.get(row.seat_id)
            if owner is None:
                assert (row.status, row.reservation_id) == ("free", None)
            else:
                assert (row.status, row.reservation_id, row.held_until) == (
                    owner.status,
                    owner.rid,
                    owner.until,
                )
        reservations = self.read(RESERVATIONS_SQL)
        assert {r.id for r in reservations} == set(self.reservations)
        for row in reservations:
            self.reservation_matches(row, self.reservations[row.id])

    def reservation_matches(self, row: Any, model: Res) -> None:
        assert row.status == model.status
        assert frozenset(row.seat_ids) == model.seats
        assert row.amount_minor == row.seat_total  # amount = sum of its seat prices
        assert row.payments == int(model.paid)  # charged once, and only if sold
        if model.paid:
            assert row.paid_minor == row.amount_minor
        refunded = model.paid and model.status == "canceled"
        assert row.refund_minor == (row.amount_minor if refunded else None)
        if row.status == "confirmed":
            assert row.sold == row.n  # a confirmed reservation owns all its seats as sold
        if row.status == "held":
            assert row.hold_expires_at == model.deadline


async def _start(app: FastAPI, stack: AsyncExitStack, dsn: str) -> httpx.AsyncClient:
    Reservations.db = await stack.enter_async_context(
        await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    )
    await stack.enter_async_context(app.router.lifespan_context(app))
    transport = httpx.ASGITransport(app=app)
    return await stack.enter_async_context(
        httpx.AsyncClient(transport=transport, base_url="http://regional")
    )


def test_reservations_state_machine(regional_dsn: str, issuer: TestIssuer) -> None:
    app = make_app(regional_dsn, issuer, full_show_hint_seconds=3600)
    app.state.payment_provider = fast_provider()
    loop, stack = asyncio.new_event_loop(), AsyncExitStack()
    Reservations.dsn, Reservations.loop, Reservations.app = regional_dsn, loop, app
    Reservations.issuer = issuer
    try:
        Reservations.http = loop.run_until_complete(_start(app, stack, regional_dsn))
        run_state_machine_as_test(
            Reservations,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
