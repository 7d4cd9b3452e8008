"""Joins of a show the router's watch read sold out: answered by the router, never the region."""

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from harness.live import live_server
from harness.procs import FakeDirectory, directory_map, metric, router, wait_all_healthy
from harness.tokens import TestIssuer
from tests.regional_api.factories import ShowSeed, seed_show
from tests.regional_api.onsale.test_waiting_room import announce, buy_every_seat, customer, place
from tests.regional_api.served import Live, live, show
from tests.router.conftest import ASGI_ONLY
from tests.support.poll import wait_until

__all__ = ["live", "show"]

# One request in flight to the region at a time: the rest wait in the router's line.
SETTINGS = {
    "max_in_flight_per_endpoint": 1,
    "line_timeout_seconds": 60,
    "request_deadline_seconds": 60,
    "attempt_timeout_seconds": 60,
    "watch_timeout_seconds": 120,
    "watch_jitter_seconds": 0,
}


@pytest.fixture
def routed(
    live: Live, issuer: TestIssuer, request: pytest.FixtureRequest
) -> Iterator[httpx.Client]:
    """A router in front of the served region, with keys to verify tokens (a client of it);
    `asgi` by indirect parametrization: every request on the ASGI path."""
    document = directory_map("v1", {"eu-west": [str(live.client.base_url)]}, {})
    with live_server(FakeDirectory(document, issuer.jwks)) as directory_url:
        proc = router(directory_url, **SETTINGS)
        if getattr(request, "param", "fast") == "asgi":
            proc.http = ASGI_ONLY
        with proc.running() as url, httpx.Client(base_url=url, timeout=60) as client:
            wait_all_healthy(url)
            yield client


def region_joins() -> float:
    """Joins of a line the served region answered (it runs in this process).

    Not its polls: the test's own polls of the region may be counted after their answer came.
    """
    total = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "http_requests_total"
                and labels.get("service") == "regional_api"
                and labels.get("method") == "POST"
                and str(labels.get("route", "")).endswith("/line")
            ):
                total += sample.value
    return total


def same(answer: httpx.Response) -> dict[str, Any]:
    """A line status but its `line_length`: the region counts a new joiner, the router's read not."""
    body: dict[str, Any] = answer.json()
    assert isinstance(body.pop("line_length"), int)
    return body


def answered(client: httpx.Client, answer: str = "sold_out") -> float:
    return metric(client, "router_line_answered_total", answer=answer)


def line_length(client: httpx.Client) -> float:
    return metric(client, "router_line_length", region="eu-west")


def hold_watch(pool: ThreadPoolExecutor, client: httpx.Client, live: Live, show: str) -> Any:
    """Hold a watch of the show's line through the router: its feed reads the state."""
    version = live.client.get(f"/shows/{show}/line/state").json()["version"]
    watch = pool.submit(client.get, f"/shows/{show}/line/watch", params={"seen": version})
    wait_until(lambda: metric(client, "router_watchers") == 1)
    return watch


def sell_out(live: Live, show: ShowSeed) -> None:
    """Customer 0 joins, is admitted and buys every seat, on the region directly."""
    assert live.client.post(f"/shows/{show.show_id}/line", headers=customer(live, 0)).is_success
    wait_until(lambda: place(live, show, 0)["state"] == "admitted")
    buy_every_seat(live, show, place(live, show, 0)["admission_pass"])
    state = f"/shows/{show.show_id}/line/state"
    wait_until(lambda: live.client.get(state).json()["sold_out"] is True)


def test_joins_waiting_in_the_line_at_the_sell_out_are_answered_without_the_region(
    live: Live, show: ShowSeed, routed: httpx.Client, regional_dsn: str
) -> None:
    other = seed_show(regional_dsn)  # no on-sale
    announce(live, show, opens_in=timedelta(seconds=-1), rate=20.0)
    line = f"/shows/{show.show_id}/line"
    with ThreadPoolExecutor(max_workers=8) as pool, psycopg.connect(live.dsn) as blocker:
        watch = hold_watch(pool, routed, live, show.show_id)
        # A hold of the other show holds the one slot (its show's row locked); the rest wait.
        blocker.execute("SELECT 1 FROM shows WHERE id = %s FOR UPDATE", (other.show_id,))
        stuck = pool.submit(
            routed.post,
            f"/shows/{other.show_id}/holds",
            json={"seat_ids": other.ids("A1")},
            headers=customer(live, "other"),
        )
        wait_until(lambda: line_length(routed) == 1)  # the watch's read of the state waits
        joins: list[Future[httpx.Response]] = [
            pool.submit(routed.post, line, headers=customer(live, f"q{n}")) for n in range(4)
        ]
        wait_until(lambda: line_length(routed) == 5)
        sell_out(live, show)
        after_sale = region_joins()  # customer 0's join, on the region directly
        blocker.commit()  # the slot comes free: the read goes first and sees the sell-out
        queued = [join.result() for join in joins]
        assert stuck.result().status_code == 201  # another show: proxied as before
        assert watch.result().json()["sold_out"] is True

    assert region_joins() == after_sale, "no queued join reached the region"
    region_answer = live.client.post(line, headers=customer(live, "direct"))
    assert region_answer.json()["state"] == "sold_out"
    for answer in queued:
        assert (answer.status_code, same(answer)) == (200, same(region_answer))
        assert answer.headers["content-type"] == region_answer.headers["content-type"]
    assert answered(routed) == 4
    assert metric(routed, "router_line_waits_total", region="eu-west", outcome="left") == 4

    # Arriving after the news: the join and the poll are answered at once.
    counted = region_joins()
    late = routed.post(line, headers=customer(live, "late") | {"X-Request-Id": "late-1"})
    poll = routed.get(line, headers=customer(live, "late"))
    assert (late.status_code, same(late)) == (200, same(region_answer))
    assert late.headers["x-request-id"] == "late-1"
    assert (poll.status_code, poll.json()["state"]) == (200, "sold_out")
    assert region_joins() == counted
    assert answered(routed) == 6


# "fast": the router's protocol hands a known sold-out join to the ASGI path; "asgi": uvicorn's.
@pytest.mark.parametrize("routed", ["fast", "asgi"], indirect=True)
def test_a_join_of_a_sold_out_show_needs_a_valid_token_as_at_the_region(
    live: Live, show: ShowSeed, routed: httpx.Client
) -> None:
    announce(live, show, opens_in=timedelta(seconds=-1), rate=20.0)
    line = f"/shows/{show.show_id}/line"
    with ThreadPoolExecutor(max_workers=2) as pool:
        watch = hold_watch(pool, routed, live, show.show_id)
        sell_out(live, show)
        assert watch.result().json()["sold_out"] is True
    wait_until(lambda: routed.post(line, headers=customer(live, 1)).json()["state"] == "sold_out")
    wait_until(lambda: answered(routed) == 1)  # from the router: the watch read the sell-out

    issuer = live.issuer
    refused: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        issuer.headers(sub="user-expired", ttl=-60),
        issuer.headers(sub="user-other", aud="another-audience"),
        issuer.headers(sub="user-other", iss="another-issuer"),
    ]
    counted = region_joins()
    by_router = [routed.post(line, headers=headers) for headers in refused]
    assert region_joins() == counted, "none reached the region"
    by_region = [live.client.post(line, headers=headers) for headers in refused]
    for mine, theirs in zip(by_router, by_region, strict=True):
        assert (mine.status_code, mine.json()) == (401, theirs.json())
        assert mine.headers["www-authenticate"] == theirs.headers["www-authenticate"]
    assert answered(routed, "unauthorized") == len(refused)
    assert answered(routed) == 1
