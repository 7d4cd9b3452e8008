"""The in-flight cap follows the machine: K halves when this replica's recent holds are over the
target (once per window, not below the floor), grows by one when under it and the cap held
customers back (up to the ceiling); 0 still turns the cap off. The latency window is fed through
the hook the served app's middleware calls for every answer."""

import asyncio
from collections.abc import Callable
from typing import Any

from common.db import make_pool
from regional_api.clock import Clock
from regional_api.onsale.admitter import Admitter
from regional_api.onsale.aimd import LATENCY_SECONDS, Aimd, HoldLatency
from tests.regional_api.onsale.test_admitter_in_flight import admissions, opened_with_room
from tests.regional_api.onsale.test_waiting_room import customer
from tests.regional_api.served import Live

HOLDS = "/shows/{show_id}/holds"
BEST = "/shows/{show_id}/best-available"
TARGET = 0.15


class Ticking:
    """A fake monotonic clock for the latency window."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


def window(answers: int, seconds: float, clock: Ticking) -> HoldLatency:
    """A latency window holding `answers` hold answers of `seconds` each, as the middleware tells."""
    latency = HoldLatency(now=clock)
    feed(latency, answers, seconds)
    return latency


def feed(latency: HoldLatency, answers: int, seconds: float) -> None:
    """Tell the window of `answers` hold and best-available answers, as the middleware does."""
    for n in range(answers):
        latency.observe("POST", HOLDS if n % 2 else BEST, 201, seconds)


def admitter_steps(dsn: str, admitter: Callable[[Any], Admitter], steps: Any) -> Any:
    """Run `steps(admitter)` with an admitter on a fresh pool (one replica); its result."""

    async def body() -> Any:
        pool = make_pool(dsn, service="test", size=1)
        await pool.open()
        try:
            return await steps(admitter(pool))
        finally:
            await pool.close()

    return asyncio.run(body())


def replica(k: int, latency: HoldLatency, *, floor: int = 2, ceiling: int = 12) -> Any:
    """A replica's admitter factory with K = `k` moved by AIMD on `latency`."""
    aimd = Aimd(latency, target=TARGET, floor=floor, ceiling=ceiling)
    return lambda pool: Admitter(pool, Clock(), in_flight=k, in_flight_seconds=5.0, aimd=aimd)


def ticks(count: int, between: Callable[[], None] = lambda: None) -> Any:
    """`count` ticks in turn: [(admitted, K after)], calling `between` before each but the first."""

    async def steps(admitter: Admitter) -> list[tuple[int, int]]:
        seen = []
        for n in range(count):
            if n:
                between()
            seen.append((await admitter.tick(), admitter.in_flight))
        return seen

    return steps


def test_k_halves_over_the_target_once_per_window_down_to_the_floor(regional_dsn: str) -> None:
    opened_with_room(regional_dsn)
    clock = Ticking()
    latency = window(10, 0.4, clock)  # p90 400 ms

    def later() -> None:  # half a window on, the slow holds still coming
        clock.at += LATENCY_SECONDS / 2
        feed(latency, 10, 0.4)

    seen = admitter_steps(regional_dsn, replica(8, latency), ticks(6, later))
    # 8 admitted at K = 8, then halved: 4; half a window later not again; then 2, the floor.
    assert [k for _, k in seen] == [4, 4, 2, 2, 2, 2]
    assert seen[0][0] == 8


def test_k_grows_by_one_while_holds_are_fast_and_the_cap_binds(regional_dsn: str) -> None:
    show = opened_with_room(regional_dsn)  # 40 wait; the pace and room would admit them all
    latency = window(10, 0.02, Ticking())
    seen = admitter_steps(regional_dsn, replica(3, latency, ceiling=5), ticks(4))
    # 3 at K = 3, then one more each tick as K grows (nobody holds), until the ceiling.
    assert seen == [(3, 4), (1, 5), (1, 5), (0, 5)]
    assert [rank for rank, _ in admissions(regional_dsn, show.show_id)] == [1, 2, 3, 4, 5]


def test_k_stays_when_the_cap_did_not_bind_or_nothing_was_measured(regional_dsn: str) -> None:
    opened_with_room(regional_dsn, customers=2)  # two wait: the line, not the cap, binds
    fast = window(10, 0.02, Ticking())
    assert admitter_steps(regional_dsn, replica(6, fast), ticks(2)) == [(2, 6), (0, 6)]
    opened_with_room(regional_dsn)
    too_few = window(4, 0.9, Ticking())  # under MIN_SAMPLES: K is left as it is
    assert admitter_steps(regional_dsn, replica(6, too_few), ticks(1)) == [(6, 6)]


def test_a_cap_of_zero_still_admits_without_a_cap(regional_dsn: str) -> None:
    opened_with_room(regional_dsn)
    slow = window(10, 0.9, Ticking())
    [(admitted, k)] = admitter_steps(regional_dsn, replica(0, slow), ticks(1))
    assert (admitted, k) == (40, 0)  # the opening's batch of 50 takes all 40 at once


def test_the_window_keeps_the_last_second_of_holds_only() -> None:
    clock = Ticking()
    latency = HoldLatency(now=clock)
    latency.observe("GET", HOLDS, 200, 5.0)  # not a hold
    latency.observe("POST", "/reservations/{reservation_id}/payments", 201, 5.0)
    assert latency.p90() is None
    feed(latency, 9, 0.01)
    latency.observe("POST", HOLDS, 409, 0.5)  # a refused hold is still a hold's time
    assert latency.p90() == 0.01
    latency.observe("POST", HOLDS, 201, 0.5)
    assert latency.p90() == 0.5
    clock.at += LATENCY_SECONDS + 0.01
    assert latency.p90() is None


def test_the_served_app_times_its_holds_into_the_window(live: Live, show: Any) -> None:
    latency: HoldLatency = live.app.state.hold_latency
    before = len(latency.answers)
    body = {"seat_ids": show.ids(sorted(show.seats)[0])}
    answer = live.client.post(f"/shows/{show.show_id}/holds", json=body, headers=customer(live, 1))
    assert answer.status_code == 201
    live.client.get(f"/shows/{show.show_id}")
    assert len(latency.answers) == before + 1  # the hold, not the read
    assert latency.answers[-1][1] > 0
