"""Routed CPU per operation on a grown database: router + regional_api + PostgreSQL, from /proc.

For one size of `benchmarks.growth`, starts one regional_api worker (as deployed, log level
INFO) on the grown database and a router in front of it (`benchmarks.floor_bench.routed`), then
loads each operation through the router for a few seconds from the holds load generator
(`benchmarks.holds.run_load`, a separate process) and charges each process's CPU to the
operations (`benchmarks.floor_bench.measure`): a one-seat hold, a show read, a seat map read,
and the first page of `/me/reservations` for the history's heavy customer.
"""

import contextlib
import json
import tempfile
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.floor_bench import Rig, Target, measure, routed
from benchmarks.history import REGION, History
from benchmarks.holds import Hall, Load, run_load, seed_hall, start_api
from common.ids import new_id
from deploy.local.topology import REGIONAL_ADMISSION
from harness.pg import PgServer
from harness.ports import dead_url
from harness.tokens import TestIssuer

OPS = {"hold": "hold1", "show read": "show", "seat map": "seats", "my reservations": "me"}
PARTS = ("router", "app", "pg_backends", "pg_background")
PAGE = 50  # /me/reservations' default limit

# The heavy customer's latest page: PAGE confirmed one-seat reservations newer than the
# history, the same at every size (at 0 the customer has only these), so the first page is the
# same response whatever the history below it.
LATEST = """
INSERT INTO reservations (id, show_id, cinema_id, user_id, customer_email, channel, status,
                          amount_minor, currency, created_at, confirmed_at)
SELECT r.id, r.show_id, %(cinema)s, %(user)s, 'heavy@example.com', 'online', 'confirmed', 1200,
       'EUR', now() - interval '1 second' * r.n, now()
FROM unnest(%(ids)s::text[], %(shows)s::text[]) WITH ORDINALITY r(id, show_id, n);
INSERT INTO reservation_seats (reservation_id, show_id, seat_id, seat_type, price_minor)
SELECT r.id, r.show_id, r.seat_id, 'standard', 1200
FROM unnest(%(ids)s::text[], %(shows)s::text[], %(seats)s::bigint[]) r(id, show_id, seat_id);
"""


def _latest(cinema_id: str, hall: Hall, heavy_user: str) -> dict[str, Any]:
    """LATEST's parameters: reservation i holds seat i of the hall in show i mod 20."""
    return {
        "cinema": cinema_id,
        "user": heavy_user,
        "ids": [new_id("res", REGION) for _ in range(PAGE)],
        "shows": [hall.show_ids[i % len(hall.show_ids)] for i in range(PAGE)],
        "seats": hall.seat_ids[:PAGE],
    }


def _seed(dsn: str, heavy_user: str) -> tuple[str, Hall]:
    """A cinema of this region with 20 future shows of 600 seats (ids the router can route),
    and the heavy customer's latest page."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cinema_id = new_id("cin", REGION)
        conn.execute(
            "INSERT INTO cinemas (id, name, city, timezone) VALUES (%s, 'Routed', 'NYC', 'UTC')",
            (cinema_id,),
        )
        hall = seed_hall(conn, cinema_id, 20, 30, 20, region=REGION)
        with psycopg.ClientCursor(conn) as cur:
            cur.execute(LATEST.encode(), _latest(cinema_id, hall, heavy_user))
        conn.execute("ANALYZE halls, seats, shows, show_prices")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("ALTER SYSTEM SET log_connections = on")
        conn.execute("SELECT pg_reload_conf()")
    return cinema_id, hall


def _pid(data_dir: Path | None) -> int | None:
    return int((data_dir / "postmaster.pid").read_text().split()[0]) if data_dir else None


@contextlib.contextmanager
def system(server: PgServer, dsn: str, clients: int, heavy_user: str) -> Iterator[tuple[Rig, str]]:
    """regional_api on `dsn` and a router in front of it, and the heavy customer's token."""
    cinema_id, hall = _seed(dsn, heavy_user)
    issuer = TestIssuer(kid="bench-growth")
    tokens = [issuer.token(sub=f"growth-user-{i}", ttl=3600) for i in range(clients)]
    dbname = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    data_dir = getattr(server, "data_dir", None)
    log = data_dir / "server.log" if data_dir else None
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-growth-")))
        (workdir / "jwks.json").write_text(json.dumps(issuer.jwks))
        env = REGIONAL_ADMISSION | {"REGIONAL_REGION": REGION, "REGIONAL_LOG_LEVEL": "INFO"}
        api = start_api(dsn, issuer, workdir, env, wait=False)
        stack.callback(api.stop)
        nowhere = stack.enter_context(dead_url())
        proxy = routed(api.url, workdir, "growth", nowhere, region=REGION).start(None)
        stack.callback(proxy.kill)
        api.wait_ready(timeout=90)
        proxy.wait("/readyz", timeout=90)
        assert api.pid is not None
        assert proxy.proc is not None
        target = Target("regional_api", "router", proxy.url, api.pid, proxy.proc.pid)
        rig = Rig(dsn, dbname, _pid(data_dir), log, cinema_id, hall, tokens, [target])
        yield rig, issuer.token(sub=heavy_user, ttl=3600)


def _load(rig: Rig, heavy: str, op: str, seconds: float, clients: int) -> Load:
    """One run of `op` through the rig's router; a hold gets a fresh hall's seats."""
    hall = rig.reads
    if op == "hold":
        with psycopg.connect(rig.dsn, autocommit=True) as conn:
            hall = seed_hall(conn, rig.cinema_id, 20, 30, 20, region=REGION)
    tokens = [heavy] if op == "my reservations" else rig.tokens
    return Load(OPS[op], rig.targets[0].url, seconds, clients, tokens, hall)


def run(
    pool: Executor,
    server: PgServer,
    grown: dict[int, tuple[str, History]],
    *,
    seconds: float,
    rounds: int = 3,
    clients: int = 64,
) -> dict[int, dict[str, dict[str, Any]]]:
    """Every size's system up at once; each operation on each size for `seconds`, the sizes
    one after the other (order alternating), `rounds` times over. Per size and operation the
    run of median total CPU, and `vs_first`: the median over rounds of its total CPU over the
    first size's in the same round (runs a few seconds apart share the machine's load)."""
    sizes = sorted(grown)
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {s: {op: [] for op in OPS} for s in sizes}
    with contextlib.ExitStack() as stack:
        rigs = {
            size: stack.enter_context(system(server, dsn, clients, history.heavy_user))
            for size, (dsn, history) in grown.items()
        }
        # pg_stat_statements is created in every rig's database; one connection resets it
        admin = stack.enter_context(psycopg.connect(grown[sizes[0]][0], autocommit=True))
        for rig, heavy in rigs.values():  # connections, prepared statements, token caches
            for op in OPS:
                pool.submit(run_load, _load(rig, heavy, op, 1.0, clients)).result()
        for n in range(rounds):
            for op in OPS:
                for size in sizes if n % 2 == 0 else sizes[::-1]:
                    rig, heavy = rigs[size]
                    load = _load(rig, heavy, op, seconds, clients)
                    runs[size][op].append(measure(pool, rig, admin, rig.targets[0], load))
    return {size: {op: _median(runs, size, op) for op in OPS} for size in sizes}


def _median(runs: dict[int, dict[str, list[dict[str, Any]]]], size: int, op: str) -> dict[str, Any]:
    first = runs[min(runs)][op]
    ratios = sorted(cpu_total(r) / cpu_total(f) for r, f in zip(runs[size][op], first, strict=True))
    found = sorted(runs[size][op], key=cpu_total)
    return found[len(found) // 2] | {"vs_first": ratios[len(ratios) // 2]}


def cpu_total(row: dict[str, Any]) -> float:
    """Router + regional_api + PostgreSQL (backends and background) CPU ms per operation."""
    spent = row["cpu_ms_per_op"]
    return float(sum(spent.get(part, 0.0) for part in PARTS))


def table(by_size: dict[int, dict[str, dict[str, Any]]]) -> str:
    """One line per operation and size: ok/s, CPU per part and in all, ratio to the first size."""
    sizes = sorted(size for size in by_size if by_size[size])
    if not sizes:
        return ""
    lines = [
        "",
        "",
        "| routed operation | size | ok/s | errors | router | regional_api | PG backends"
        " | PG background | total CPU ms/op | vs first size (median of rounds)"
        " | new PG connections |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in OPS:
        for size in sizes:
            row = by_size[size][op]
            spent, total = row["cpu_ms_per_op"], cpu_total(row)
            parts = " | ".join(f"{spent.get(part, 0.0):.2f}" for part in PARTS)
            lines.append(
                f"| {op} | {size:,} | {row['ok_per_s']:.0f} | {row['errors']} | {parts}"
                f" | {total:.2f} | {row['vs_first']:.2f} | {row['new_connections']} |"
            )
    return "\n".join(lines)
