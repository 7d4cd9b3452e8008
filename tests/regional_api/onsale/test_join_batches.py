"""Joins in batches (`onsale/batches.py`): the joins of a show that arrive while a batch is in the
database go as one statement, and each customer still gets its own join and answer."""

import asyncio
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from common.db import make_pool
from regional_api.onsale import statements as sql
from regional_api.onsale.batches import JoinBatches
from tests.regional_api.factories import ShowSeed, query, seed_onsale, seed_show
from tests.regional_api.onsale.test_join import line_statements
from tests.regional_api.onsale.test_waiting_room import announce, customer, join
from tests.regional_api.served import Live
from tests.support.poll import wait_until


def _batches() -> tuple[float, float]:
    """Batches sent so far, and the joins in them (the batch-size histogram)."""
    count = REGISTRY.get_sample_value("onsale_join_batch_size_count") or 0.0
    total = REGISTRY.get_sample_value("onsale_join_batch_size_sum") or 0.0
    return count, total


@contextmanager
def _line_locked(live: Live, show: ShowSeed) -> Iterator[None]:
    """Hold the on-sale's row lock: a batch of joins waits for it (they take KEY SHARE)."""
    with psycopg.connect(live.dsn) as lock:
        lock.execute("SELECT 1 FROM onsales WHERE show_id = %s FOR UPDATE", (show.show_id,))
        yield
        lock.commit()


def _ranks(dsn: str, show_id: str) -> dict[str, int]:
    """The customers in a line and their ranks (0: not ranked yet)."""
    rows = query(
        dsn, "SELECT user_id, coalesce(rank, 0) FROM line_entries WHERE show_id = %s", show_id
    )
    return dict(rows)


def _queued(joins: JoinBatches) -> int:
    return sum(len(queue) for queue in joins.queued.values())


def _queued_is(joins: JoinBatches, count: int) -> Callable[[], bool]:
    return lambda: _queued(joins) == count


def join_in_batches(
    live: Live, show: ShowSeed, users: Sequence[str], *, most: int = 128, ordered: bool = True
) -> list[httpx.Response]:
    """Join `users`: the first alone, the others queued behind its batch.

    The first batch waits for the on-sale's row lock while the others arrive, one by one in
    this order (`ordered`) or all at once, so they go as batches of at most `most` once the
    lock is let go. The lock is held for less than the pool's statement timeout (5 s) only if
    the others queue quickly: all at once is one wait instead of one per customer.
    """
    joins: JoinBatches = live.app.state.joins
    joins.most = most
    # A join goes in the batches of early joins only once the replica has read the on-sale (its
    # refresh, every 0.5 s): a join just after the announcement would start a batch of its own.
    rooms = live.app.state.waiting_rooms
    wait_until(lambda: rooms.fresh(show.show_id) is not None)
    url = f"/shows/{show.show_id}/line"

    def post(user: str) -> httpx.Response:
        return live.client.post(url, headers=customer(live, user))

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        answers: list[Future[httpx.Response]] = []
        with _line_locked(live, show):  # shorter than the pool's statement timeout (5 s)
            answers.append(pool.submit(post, users[0]))  # sent, then waits for the lock
            wait_until(lambda: bool(joins.tasks) and _queued(joins) == 0, interval=0.005)
            for user in users[1:]:
                answers.append(pool.submit(post, user))
                if ordered:
                    wait_until(_queued_is(joins, len(answers) - 1), interval=0.005)
            wait_until(_queued_is(joins, len(users) - 1), interval=0.005)
        return [answer.result() for answer in answers]


def test_concurrent_joins_go_in_fewer_statements_each_with_its_answer(
    live: Live, show: ShowSeed
) -> None:
    announce(live, show, opens_in=timedelta(hours=1))  # not open: the admitter reads no line
    join(live, show, "warm")  # the first call of a connection may prepare
    statements, (batches, joined) = line_statements(live.dsn), _batches()
    users = [f"c{n}" for n in range(20)]
    answers = join_in_batches(live, show, users, ordered=False)  # order is not the point here
    assert [answer.status_code for answer in answers] == [200] * 20
    assert line_statements(live.dsn) - statements == 2  # the first join, then the other 19
    count, total = _batches()
    assert (count - batches, total - joined) == (2, 20)
    bodies = [answer.json() for answer in answers]
    assert all(body["state"] == "waiting" and body["line_ticket"] for body in bodies)
    assert len({body["line_ticket"] for body in bodies}) == 20
    entries = query(live.dsn, "SELECT user_id FROM line_entries WHERE show_id = %s", show.show_id)
    assert sorted(user for (user,) in entries) == sorted(
        ["user-warm"] + [f"user-{u}" for u in users]
    )
    # Each answer is the customer's own: joining again alone gives the same ticket.
    assert join(live, show, "c7")["line_ticket"] == bodies[7]["line_ticket"]


def test_a_customer_twice_in_one_batch_joins_once(live: Live, show: ShowSeed) -> None:
    announce(live, show, opens_in=timedelta(seconds=-1))  # open: ranked as they come
    join(live, show, "first")  # draws the (empty) line: rank 1
    answers = join_in_batches(live, show, ["a", "b", "twice", "c", "twice", "first"])
    assert [answer.status_code for answer in answers] == [200] * 6
    bodies = [answer.json() for answer in answers]
    assert _place(bodies[2]) == _place(bodies[4])
    assert _ranks(live.dsn, show.show_id) == {
        "user-first": 1,  # joining again keeps the place
        "user-a": 2,
        "user-b": 3,
        "user-twice": 4,
        "user-c": 5,
    }


def _place(body: dict[str, Any]) -> tuple[object, ...]:
    """What says a customer's place: the state, the line ticket (its rank) or the pass."""
    return body["state"], body["line_ticket"], body["admission_pass"]


def test_a_bad_join_in_a_batch_fails_alone(live: Live, show: ShowSeed) -> None:
    """A customer id PostgreSQL cannot store fails the batch; it goes again one by one."""
    announce(live, show, opens_in=timedelta(seconds=-1))
    join(live, show, "first")
    answers = join_in_batches(live, show, ["a", "b", "bad\x00", "c"])
    assert [answer.status_code for answer in answers] == [200, 200, 422, 200]
    assert answers[2].json()["error"] == "invalid_value"
    assert _ranks(live.dsn, show.show_id) == {
        "user-first": 1,
        "user-a": 2,
        "user-b": 3,
        "user-c": 4,
    }


def test_a_batch_failing_in_the_database_leaves_the_others_joined(
    live: Live, show: ShowSeed
) -> None:
    """A join the database refuses rolls its batch back; the others are joined one by one."""
    announce(live, show, opens_in=timedelta(seconds=-1))
    join(live, show, "first")
    with psycopg.connect(live.dsn, autocommit=True) as conn:
        conn.execute(REFUSE_ONE)
    answers = join_in_batches(live, show, ["a", "b", "refused", "c"])
    assert [answer.status_code for answer in answers[:2] + answers[3:]] == [200, 200, 200]
    assert answers[2].status_code == 500  # a database fault, answered as any unknown one
    ranked = _ranks(live.dsn, show.show_id)
    assert set(ranked) == {"user-first", "user-a", "user-b", "user-c"}
    assert ranked["user-a"] < ranked["user-b"] < ranked["user-c"]  # the batch's numbers: a gap


# A database fault for one customer only: its entry cannot be written.
REFUSE_ONE = """
CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF NEW.user_id = 'user-refused' THEN RAISE EXCEPTION 'refused'; END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER refuse_one BEFORE INSERT ON line_entries FOR EACH ROW EXECUTE FUNCTION refuse_one();
"""


def test_ranks_after_the_opening_follow_arrival_within_and_across_batches(
    live: Live, show: ShowSeed
) -> None:
    announce(live, show, opens_in=timedelta(hours=1))
    for n in range(5):
        join(live, show, f"early-{n}")
    live.advance(timedelta(hours=1, seconds=1))  # the next join draws the line
    late = [f"late-{n}" for n in range(13)]
    answers = join_in_batches(live, show, late, most=4)  # batches of 1, 4, 4, 4
    assert [answer.status_code for answer in answers] == [200] * 13
    ranked = _ranks(live.dsn, show.show_id)
    assert sorted(ranked[f"user-early-{n}"] for n in range(5)) == [1, 2, 3, 4, 5]
    assert [ranked[f"user-{user}"] for user in late] == list(range(6, 19))  # 0 inversions


def test_the_draw_waits_for_a_batch_of_early_joins_in_flight(regional_dsn: str) -> None:
    show = seed_show(regional_dsn)
    opens = datetime.now(UTC) + timedelta(hours=1)
    seed_onsale(regional_dsn, show.show_id, opens)
    early = ["e1", "e2", "e1", "e3"]
    params = {"show_id": show.show_id, "user_ids": early, "nows": [datetime.now(UTC)] * 4}
    with psycopg.connect(regional_dsn) as batch:
        rows = batch.execute(sql.JOIN_MANY, params).fetchall()
        assert len(rows) == 4  # one row per customer, in order, the duplicate too
        with pytest.raises(psycopg.errors.LockNotAvailable):
            _join_beside(regional_dsn, show.show_id, "drawer", when=opens)
        batch.commit()
    with psycopg.connect(regional_dsn, autocommit=True) as conn:
        conn.execute("SELECT * FROM join_and_place(%s, 'drawer', %s)", (show.show_id, opens))
    ranked = _ranks(regional_dsn, show.show_id)
    assert sorted(ranked[user] for user in ("e1", "e2", "e3")) == [1, 2, 3]  # drawn, all of them
    assert ranked["drawer"] == 4


def _join_beside(dsn: str, show_id: str, user_id: str, *, when: datetime) -> None:
    """Join at `when` from another connection; waiting for a lock fails at once."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '200ms'")
        conn.execute("SELECT * FROM join_and_place(%s, %s, %s)", (show_id, user_id, when))


def test_a_join_whose_client_hung_up_leaves_the_others_answered(regional_dsn: str) -> None:
    """Cancelling a waiting request (its client gone) cancels neither its batch nor the next."""
    show = seed_show(regional_dsn)
    seed_onsale(regional_dsn, show.show_id, datetime.now(UTC) - timedelta(seconds=1))
    assert asyncio.run(_hang_ups(regional_dsn, show.show_id)) == [True, True]
    assert set(_ranks(regional_dsn, show.show_id)) == {"sent", "queued", "stays-1", "stays-2"}


async def _hang_ups(dsn: str, show_id: str) -> list[bool]:
    """Join four customers; the first (in the database) and the second (queued) hang up."""
    pool = make_pool(dsn, service="test", size=2)
    await pool.open()
    joins = JoinBatches(pool)

    def joining(user: str) -> "asyncio.Task[Any]":
        now = datetime.now(UTC)
        return asyncio.create_task(joins.join(show_id=show_id, user_id=user, now=now, early=False))

    try:
        async with await psycopg.AsyncConnection.connect(dsn) as lock:
            await lock.execute("SELECT 1 FROM onsales WHERE show_id = %s FOR UPDATE", (show_id,))
            sent = joining("sent")
            async with asyncio.timeout(5):  # the first batch is in the database
                while joins.queued or not joins.tasks:
                    await asyncio.sleep(0.01)
            gone = [sent, joining("queued")]
            stays = [joining("stays-1"), joining("stays-2")]
            await asyncio.sleep(0)  # all four have queued or gone
            for task in gone:
                task.cancel()
            await lock.commit()
        rows = await asyncio.gather(*stays)
        return [row.in_line for row in rows]
    finally:
        await pool.close()
