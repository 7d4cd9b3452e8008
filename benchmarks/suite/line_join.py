"""The CPU of one join of a waiting room's line, on a replica and its PostgreSQL.

Run: `.venv/bin/python -m benchmarks.onsale_line --join-cost`. Starts the stack, announces an
on-sale of a fresh show, and sends joins of distinct customers straight to one replica (no
router), a few at a time, before the opening and after it; the replica's and PostgreSQL's CPU
seconds over the joins, less what they spend idle for as long, divided by the joins; and the
joins per statement the replica sent (its `onsale_join_batch_size` histogram; None on code
without batches). Then, on the same database, the CPU of one PostgreSQL backend per join sent
as `JOIN` one customer at a time or as `JOIN_MANY` of `BATCH` (no HTTP, no replica: the
statements alone, as a replica's hot connection sends them).
"""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import psycopg

from benchmarks.holds import children_of, cpu_seconds
from benchmarks.suite import system
from benchmarks.suite.loads import REGION
from common.db import hot_options
from deploy.local.stack import LocalStack
from regional_api.onsale import statements as sql

JOINS = 1000  # per phase
AT_ONCE = 8
BATCH = 8  # joins per JOIN_MANY in the statements' own measurement


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids if _alive(pid))


def _alive(pid: int) -> bool:
    try:
        cpu_seconds(pid)
    except (OSError, IndexError):
        return False
    return True


async def _joins(url: str, tokens: list[str]) -> int:
    """Send one join per token, `AT_ONCE` at a time; how many were answered 200."""
    ok = 0
    queue = iter(tokens)
    connector = aiohttp.TCPConnector(limit=AT_ONCE)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal ok
            for token in queue:
                headers = {"Authorization": f"Bearer {token}"}
                async with http.post(url, headers=headers) as answer:
                    await answer.read()
                    ok += answer.status == 200

        await asyncio.gather(*(worker() for _ in range(AT_ONCE)))
    return ok


def _batches(url: str) -> tuple[float, float]:
    """The replica's statements of joins sent so far, and the joins in them."""
    found = {"onsale_join_batch_size_count": 0.0, "onsale_join_batch_size_sum": 0.0}
    for _, sample in system.metric_samples([url]):
        if sample.name in found:
            found[sample.name] += sample.value
    return found["onsale_join_batch_size_count"], found["onsale_join_batch_size_sum"]


def _phase(stack: LocalStack, url: str, tokens: list[str]) -> dict[str, float | None]:
    """CPU microseconds per join of `tokens`, on the replica and on PostgreSQL."""
    replica = stack.processes[f"{REGION}-1"].pid or 0
    base = stack.regional_urls(REGION)[0]
    batches_before = _batches(base)
    master = system.postmaster_pid(stack, REGION) or 0
    pids = {"replica": [replica], "postgres": [master, *children_of(master)]}
    idle_before = {name: _cpu(p) for name, p in pids.items()}
    started = time.monotonic()
    answered = asyncio.run(_joins(url, tokens))

    took = time.monotonic() - started
    after = {name: _cpu(p) for name, p in pids.items()}
    pids["postgres"] = [master, *children_of(master)]
    time.sleep(took)  # the same time idle: the background work (refreshes, admitter, probes)
    idle_after = {name: _cpu(p) for name, p in pids.items()}
    batches = [now - then for now, then in zip(_batches(base), batches_before, strict=True)]
    costs: dict[str, float | None] = {"joins": float(answered), "seconds": round(took, 2)}
    costs["joins_per_statement"] = round(batches[1] / batches[0], 2) if batches[0] else None
    for name in pids:
        busy = after[name] - idle_before[name]
        idle = idle_after[name] - after[name]
        costs[f"{name}_us"] = round((busy - idle) / max(answered, 1) * 1e6, 1)
    return costs


def cost(stack: LocalStack, joins: int = JOINS) -> dict[str, Any]:
    """CPU per join before the opening (unranked) and after it (ranked at the end)."""
    hall = system.seed(stack, REGION, rows=15, cols=20, shows=1)
    show_id = hall.show_ids[0]
    opens_at = time.time() + 3600
    with psycopg.connect(stack.dsns[REGION], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO onsales (show_id, opens_at, waiting_room, max_admit_per_second,"
            " created_at) VALUES (%s, %s, true, 1, now())",
            (show_id, datetime.fromtimestamp(opens_at, UTC)),
        )
    url = f"{stack.regional_urls(REGION)[0]}/shows/{show_id}/line"
    tokens = system.tokens(stack, 2 * joins + AT_ONCE, "join")
    asyncio.run(_joins(url, tokens[-AT_ONCE:]))  # warm: connections, plans, token cache
    early = _phase(stack, url, tokens[:joins])
    with psycopg.connect(stack.dsns[REGION], autocommit=True) as conn:
        conn.execute("UPDATE onsales SET opens_at = now() WHERE show_id = %s", (show_id,))
    late = _phase(stack, url, tokens[joins : 2 * joins])
    return {
        "before the opening": early,
        "after the opening": late,
        "at_once": AT_ONCE,
        "postgres_backend_us": statement_cost(stack, joins),
    }


def statement_cost(stack: LocalStack, joins: int = JOINS) -> dict[str, float]:
    """CPU microseconds of one backend per join: one statement each, or `BATCH` in one."""
    costs: dict[str, float] = {}
    for how in ("one", "batch"):
        show_id = system.seed(stack, REGION, rows=15, cols=20, shows=1).show_ids[0]
        with psycopg.connect(stack.dsns[REGION], **hot_options("bench", 5000)) as conn:
            conn.execute(
                "INSERT INTO onsales (show_id, opens_at, created_at)"
                " VALUES (%s, now() + interval '1 hour', now())",
                (show_id,),
            )
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            backend = row[0] if row else 0
            for phase in ("before", "after"):
                if phase == "after":
                    conn.execute(
                        "UPDATE onsales SET opens_at = now() WHERE show_id = %s", (show_id,)
                    )
                users = [f"{how}-{phase}-{n}" for n in range(joins + BATCH)]
                _send(conn, show_id, users[:BATCH], batch=how == "batch")  # plans
                started = cpu_seconds(backend)
                _send(conn, show_id, users[BATCH:], batch=how == "batch")
                spent = cpu_seconds(backend) - started
                costs[f"{how} {phase} the opening"] = round(spent / joins * 1e6, 1)
    return costs


def _send(conn: psycopg.Connection[Any], show_id: str, users: list[str], *, batch: bool) -> None:
    """Join `users` one statement each, or `BATCH` a statement."""
    now = datetime.now(UTC)
    if not batch:
        for user in users:
            conn.execute(sql.JOIN, {"show_id": show_id, "user_id": user, "now": now}).fetchall()
        return
    for first in range(0, len(users), BATCH):
        part = users[first : first + BATCH]
        params = {"show_id": show_id, "user_ids": part, "nows": [now] * len(part)}
        conn.execute(sql.JOIN_MANY, params).fetchall()
