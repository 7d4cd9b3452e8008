"""An admitted customer's hold, and a waiting customer's poll of its place, go ahead of the joins
that fill a saturated replica."""

import functools
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from common.priority import finishes_sale
from harness.live import live_server
from harness.tokens import TestIssuer
from regional_api.onsale import passes
from tests.regional_api.factories import ShowSeed, query
from tests.regional_api.onsale.test_waiting_room import PASS, announce, customer
from tests.regional_api.served import Live, fast_provider, regional_app
from tests.support.poll import wait_until


@pytest.fixture
def one_at_a_time(regional_dsn: str, issuer: TestIssuer) -> Iterator[Live]:
    """A served regional app that runs one request at a time; the rest wait in its line."""
    app = regional_app(
        regional_dsn,
        issuer,
        global_api_url="http://127.0.0.1:9",
        max_in_flight=1,
        max_queued=16,
        queue_timeout_seconds=60.0,
    )
    app.state.payment_provider = fast_provider()
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield Live(app, client, app.state.payment_provider, regional_dsn, issuer)


def gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "regional_api"}) or 0.0


def arrived() -> float:
    """Requests in the app or waiting for it."""
    return gauge("http_requests_in_flight") + gauge("http_requests_queued")


def admission_pass(live: Live, show: ShowSeed, user: str) -> str:
    """A pass for `user` under the region's secret, as the line hands it out once admitted."""
    ((secret,),) = query(live.dsn, "SELECT secret FROM onsale_secret")
    expires = live.now() + timedelta(minutes=10)
    return passes.issue(secret.encode(), show_id=show.show_id, user_id=user, expires_at=expires)


def test_a_pass_holders_hold_is_served_before_earlier_queued_joins(
    one_at_a_time: Live, show: ShowSeed
) -> None:
    live = one_at_a_time
    announce(live, show, opens_in=timedelta(hours=1))
    wait_until(lambda: show.show_id in live.app.state.waiting_rooms.shows)
    line = f"{live.client.base_url}/shows/{show.show_id}/line"
    with psycopg.connect(live.dsn) as blocker, ThreadPoolExecutor(max_workers=8) as pool:
        # Joins wait for the on-sale's row: the first fills the replica, the others queue.
        blocker.execute("SELECT 1 FROM onsales WHERE show_id = %s FOR UPDATE", (show.show_id,))
        joins: list[Future[Any]] = []
        for n in range(4):
            joins.append(pool.submit(httpx.post, line, headers=customer(live, f"j{n}"), timeout=60))
            wait_until(lambda: arrived() == len(joins))
        headers = customer(live, "buyer") | {PASS: admission_pass(live, show, "user-buyer")}
        body = {"seat_ids": show.ids("A1", "A2")}
        url = f"{live.client.base_url}/shows/{show.show_id}/holds"
        hold = pool.submit(httpx.post, url, json=body, headers=headers, timeout=60)
        wait_until(lambda: gauge("http_requests_queued") == 4)
        blocker.commit()
        assert hold.result().status_code == 201, hold.result().text
        assert [j.result().status_code for j in joins] == [200] * 4

    ((held_at,),) = query(
        live.dsn, "SELECT created_at FROM reservations WHERE show_id = %s", show.show_id
    )
    joined = dict(
        query(
            live.dsn, "SELECT user_id, joined_at FROM line_entries WHERE show_id = %s", show.show_id
        )
    )
    assert joined["user-j0"] < held_at, "the join in flight was answered first"
    assert all(held_at < joined[f"user-j{n}"] for n in (1, 2, 3)), "a queued join went first"


def test_an_ask_for_the_pass_at_ones_turn_is_served_before_earlier_queued_joins(
    one_at_a_time: Live, show: ShowSeed
) -> None:
    live = one_at_a_time
    announce(live, show, opens_in=timedelta(hours=1))
    ((secret,),) = query(live.dsn, "SELECT secret FROM onsale_secret")
    with psycopg.connect(live.dsn, autocommit=True) as conn:  # rank 1 is admitted
        conn.execute(
            "INSERT INTO line_entries (show_id, user_id, joined_at, rank, admitted_at, expires_at)"
            " VALUES (%s, 'user-asker', now(), 1, now(), now() + interval '10 minutes')",
            (show.show_id,),
        )
        conn.execute(
            "UPDATE onsales SET next_rank = 1, admitted_through = 1 WHERE show_id = %s",
            (show.show_id,),
        )
    rooms = live.app.state.waiting_rooms
    wait_until(lambda: show.show_id in rooms.lines and rooms.lines[show.show_id].admitted_through)
    ticket = passes.issue_ticket(
        secret.encode(), show_id=show.show_id, user_id="user-asker", number=passes.LATER + 1
    )
    line = f"{live.client.base_url}/shows/{show.show_id}/line"
    done: list[str] = []  # in the order the answers came

    def finished(name: str, _: Future[Any]) -> None:
        done.append(name)

    with psycopg.connect(live.dsn) as blocker, ThreadPoolExecutor(max_workers=8) as pool:
        blocker.execute("SELECT 1 FROM onsales WHERE show_id = %s FOR UPDATE", (show.show_id,))
        joins: list[Future[Any]] = []
        for n in range(4):
            joins.append(pool.submit(httpx.post, line, headers=customer(live, f"j{n}"), timeout=60))
            joins[-1].add_done_callback(functools.partial(finished, f"j{n}"))
            wait_until(lambda: arrived() == len(joins))
        headers = customer(live, "asker") | {"X-Line-Ticket": ticket}
        ask = pool.submit(httpx.get, line, headers=headers, timeout=60)
        ask.add_done_callback(functools.partial(finished, "ask"))
        wait_until(lambda: gauge("http_requests_queued") == 4)
        blocker.commit()
        assert ask.result().json()["state"] == "admitted", ask.result().text
        assert [j.result().status_code for j in joins] == [200] * 4
    assert done.index("ask") < done.index("j1"), f"a queued join went first: {done}"


def test_a_poll_with_any_line_ticket_goes_first() -> None:
    signature = b"A" * 43
    line = "/shows/show-eu-west-abc/line"
    assert finishes_sale("GET", line, [(b"x-line-ticket", b"12." + signature)])
    assert finishes_sale("GET", line, [(b"x-line-ticket", b"-." + signature)])  # an older one
    assert finishes_sale("GET", line, [(b"x-line-ticket", b"1000000000012." + signature)])
    assert not finishes_sale("GET", line, [(b"x-line-ticket", b"10000000000012." + signature)])
    assert not finishes_sale("GET", line, [(b"x-line-ticket", b"12.short")])
    assert not finishes_sale("GET", line, [(b"x-line-ticket", b"--." + signature)])
    assert not finishes_sale("GET", line)
    assert not finishes_sale("POST", line, [(b"x-line-ticket", b"12." + signature)])  # a join
    assert not finishes_sale("GET", line + "/watch", [(b"x-line-ticket", b"12." + signature)])


def test_the_routers_read_of_a_lines_state_goes_first() -> None:
    # One read stands for every watcher of the show: behind the opening's joins, it told the
    # admitted customers their turn seconds late (docs/benchmarks/onsale-line.md, sixth round).
    assert finishes_sale("GET", "/shows/show-eu-west-abc/line/state")
    assert not finishes_sale("POST", "/shows/show-eu-west-abc/line/state")
