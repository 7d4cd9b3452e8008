"""Seat holds under load: one regional_api worker, holds/s and latency against `/readyz`.

Run: `.venv/bin/python -m benchmarks.holds [--seconds 10] [--clients 64] [--write]`.
Starts its own durable PostgreSQL, migrates and seeds it (many shows in one hall, plus one big
show), runs ONE regional_api worker as a real process with a static JWKS, and drives it from a
separate process with aiohttp clients. `--write` rewrites `docs/benchmarks/holds.md`.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from common.ids import new_id
from common.migrate import upgrade
from deploy.local.processes import ServiceProcess
from harness.pg import create_database, free_port, start_server
from harness.tokens import TestIssuer

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "holds.md"
REGION = "eu-west"
CARD = {"method": "card", "card_number": "4242424242424242"}


@dataclass(frozen=True)
class Hall:
    """A seeded hall: its seat ids row by row, and the shows in it."""

    rows: int
    cols: int
    seat_ids: list[int]
    show_ids: list[str]

    def pair(self, rng: random.Random) -> list[int]:
        """Two adjacent seats of one row, chosen at random."""
        row, col = rng.randrange(self.rows), rng.randrange(self.cols - 1)
        first = row * self.cols + col
        return [self.seat_ids[first], self.seat_ids[first + 1]]

    def nth_pair(self, n: int) -> list[int]:
        """The n-th pair of adjacent seats, row by row (rows have an even number of seats)."""
        first = (2 * n) % len(self.seat_ids)
        return [self.seat_ids[first], self.seat_ids[first + 1]]


@dataclass(frozen=True)
class Load:
    """One load run for the generator process."""

    # readyz | spread | concentrated | hold_pay | hold_pay_concentrated | hold1 | show | seats |
    # me | hold_pay_keyed
    scenario: str
    url: str
    seconds: float
    clients: int
    tokens: list[str]
    hall: Hall | None = None


@dataclass
class Outcome:
    """What a load run measured."""

    scenario: str
    clients: int
    seconds: float
    ok: int = 0
    conflicts: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error_statuses: dict[int, int] = field(default_factory=dict)  # status -> count

    @property
    def rate(self) -> float:
        """Successful operations per second."""
        return self.ok / self.seconds

    def percentile(self, q: float) -> float:
        """Latency percentile in ms."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


CATALOG_TABLES = "cinemas, halls, seats, movies, shows, show_prices, show_seats"


def seed_hall(
    conn: psycopg.Connection,
    cinema_id: str,
    rows: int,
    cols: int,
    shows: int,
    *,
    region: str = REGION,
) -> Hall:
    """Insert a hall of rows x cols standard seats, a movie and `shows` shows a day apart."""
    hall_id, movie_id = new_id("hall", region), new_id("mov", region)
    conn.execute(
        "INSERT INTO halls (id, cinema_id, name, layout, seat_count) VALUES (%s, %s, %s, '{}', %s)",
        (hall_id, cinema_id, hall_id, rows * cols),
    )
    conn.execute(
        "INSERT INTO seats (hall_id, row_label, number, label, grid_row, grid_col, seat_type)"
        " SELECT %s, 'R' || r, c + 1, 'R' || r || '-' || (c + 1), r, c, 'standard'"
        " FROM generate_series(0, %s - 1) r, generate_series(0, %s - 1) c ORDER BY r, c",
        (hall_id, rows, cols),
    )
    seat_ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM seats WHERE hall_id = %s ORDER BY grid_row, grid_col", (hall_id,)
        )
    ]
    conn.execute(
        "INSERT INTO movies (id, title, duration_minutes) VALUES (%s, 'Bench', 100)", (movie_id,)
    )
    start = datetime.now(UTC) + timedelta(days=1)
    show_ids = [new_id("show", region) for _ in range(shows)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO shows (id, movie_id, hall_id, cinema_id, starts_at, ends_at, currency)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'EUR')",
            [
                (
                    show_id,
                    movie_id,
                    hall_id,
                    cinema_id,
                    start + timedelta(days=i),
                    start + timedelta(days=i, hours=2),
                )
                for i, show_id in enumerate(show_ids)
            ],
        )
    conn.execute(
        "INSERT INTO show_prices (show_id, seat_type, amount_minor)"
        " SELECT id, 'standard', 1200 FROM shows WHERE hall_id = %s",
        (hall_id,),
    )
    conn.execute(
        "INSERT INTO show_seats (show_id, seat_id, seat_type, price_minor)"
        " SELECT sh.id, s.id, s.seat_type, 1200 FROM shows sh JOIN seats s ON s.hall_id = sh.hall_id"
        " WHERE sh.hall_id = %s",
        (hall_id,),
    )
    return Hall(rows, cols, seat_ids, show_ids)


def seed(dsn: str) -> tuple[Hall, Hall]:
    """Many shows in one 20 x 30 hall (spread load) and one show in a 100 x 200 hall."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cinema_id = new_id("cin", REGION)
        conn.execute(
            "INSERT INTO cinemas (id, name, city, timezone) VALUES (%s, 'Bench', 'Paris', 'Europe/Paris')",
            (cinema_id,),
        )
        spread = seed_hall(conn, cinema_id, 20, 30, 200)
        big = seed_hall(conn, cinema_id, 100, 200, 1)
        # Statistics for the catalog only: an ANALYZE of the empty booking tables would make
        # PostgreSQL plan (and cache) sequential scans for the foreign-key checks on
        # reservations, whose cost then grows with every hold until the next ANALYZE.
        conn.execute(f"ANALYZE {CATALOG_TABLES}")
    return spread, big


async def _drive(load: Load) -> Outcome:
    import aiohttp

    outcome = Outcome(load.scenario, load.clients, load.seconds)
    connector = aiohttp.TCPConnector(limit=load.clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(load.url, connector=connector, timeout=timeout) as http:
        deadline = time.perf_counter() + load.seconds

        async def worker(index: int) -> None:
            rng = random.Random(f"{load.scenario}-{index}-{time.time_ns()}")
            headers = {"Authorization": f"Bearer {load.tokens[index % len(load.tokens)]}"}
            turn = 0
            while time.perf_counter() < deadline:
                # Concentrated: the clients take neighbouring pairs of one show in turn.
                try:
                    await _step(http, load, rng, headers, outcome, index + load.clients * turn)
                except (aiohttp.ClientError, TimeoutError):  # reset, refused, timed out
                    outcome.errors += 1
                    outcome.error_statuses[0] = outcome.error_statuses.get(0, 0) + 1
                turn += 1

        await asyncio.gather(*(worker(i) for i in range(load.clients)))
    return outcome


# scenario -> path of a random show (`me`: the token's customer's first page, any show)
READS = {"show": "/shows/{}", "seats": "/shows/{}/seats", "me": "/me/reservations"}


async def _post(
    http: object, path: str, body: object, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    async with http.post(path, json=body, headers=headers) as response:  # type: ignore[attr-defined]
        return int(response.status), await response.json()


async def _step(
    http: object,
    load: Load,
    rng: random.Random,
    headers: dict[str, str],
    outcome: Outcome,
    turn: int,
) -> None:
    started = time.perf_counter()
    if load.scenario == "readyz":
        async with http.get("/readyz") as response:  # type: ignore[attr-defined]
            await response.read()
            status = response.status
        _record(outcome, status, started)
        return
    assert load.hall is not None
    show_id = rng.choice(load.hall.show_ids)
    if load.scenario in READS:
        path = READS[load.scenario].format(show_id)
        async with http.get(path, headers=headers) as response:  # type: ignore[attr-defined]
            await response.read()
            _record(outcome, response.status, started)
        return
    concentrated = load.scenario.endswith("concentrated")
    if load.scenario == "hold1":
        seats = [rng.choice(load.hall.seat_ids)]
    else:
        seats = load.hall.nth_pair(turn) if concentrated else load.hall.pair(rng)
    keyed = load.scenario.endswith("_keyed")  # each request with an Idempotency-Key, as the app
    hold_headers = headers | {"Idempotency-Key": uuid.uuid4().hex} if keyed else headers
    status, body = await _post(http, f"/shows/{show_id}/holds", {"seat_ids": seats}, hold_headers)
    if load.scenario.startswith("hold_pay") and status == 201:
        pay_headers = headers | {"Idempotency-Key": uuid.uuid4().hex} if keyed else headers
        status, _ = await _post(http, f"/reservations/{body['id']}/payments", CARD, pay_headers)
    _record(outcome, status, started)


def _record(outcome: Outcome, status: int, started: float) -> None:
    if status in (200, 201):
        outcome.ok += 1
        outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
    elif status == 409:
        outcome.conflicts += 1
    else:
        outcome.errors += 1
        outcome.error_statuses[status] = outcome.error_statuses.get(status, 0) + 1


def run_load(load: Load) -> Outcome:
    """Entry point of the load-generator process."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_drive(load))


def start_api(
    dsn: str,
    issuer: TestIssuer,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    *,
    wait: bool = True,
) -> ServiceProcess:
    """One regional_api worker that trusts the benchmark's token key, read from a file.

    With `wait=False` it is started, not yet ready (`wait_ready()` it).
    """
    jwks_file = workdir / "jwks.json"
    jwks_file.write_text(json.dumps(issuer.jwks))
    env = {
        "REGIONAL_REGION": REGION,
        "REGIONAL_DATABASE_URL": dsn,
        "REGIONAL_JWKS_CACHE_FILE": str(jwks_file),
        "REGIONAL_JWKS_URL": "http://127.0.0.1:9/jwks.json",  # nowhere: the file is enough
        "REGIONAL_LOG_LEVEL": "WARNING",
        "REGIONAL_DB_POOL_SIZE": "20",
        "REGIONAL_MAX_SEATS_PER_CUSTOMER_SHOW": "100000",
    } | (extra_env or {})
    api = ServiceProcess("regional_api", "regional_api", free_port(), env, workdir / "api.log")
    api.start()
    if wait:
        api.wait_ready(timeout=60)
    return api


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _profiler(pid: int, load: Load, out: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the API for the length of a run (collapsed stacks), if asked for."""
    if out is None or load.scenario == "warmup":
        return None
    from benchmarks.suite import profile  # the suite imports this module

    return profile.start(pid, load.seconds, out / f"{load.scenario}-{load.clients}.txt")


def children_of(pid: int) -> list[int]:
    """Direct children of a process, from /proc/<pid>/stat."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def postgres_cpu(data_dir: Path) -> dict[int, float]:
    """CPU seconds of the server's postmaster and of each process it runs (backends included)."""
    try:
        master = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not a local server: nothing to read
        return {}
    used = {}
    for pid in [master, *children_of(master)]:
        with contextlib.suppress(OSError, IndexError):
            used[pid] = cpu_seconds(pid)
    return used


@dataclass
class Row:
    """One line of the result table."""

    outcome: Outcome
    cpu_ms_per_op: float
    pg_cpu_ms_per_op: float


def measure(
    api: ServiceProcess, loads: list[Load], profile: Path | None, pg_data: Path
) -> list[Row]:
    """Run each load in a separate generator process, sampling the API's and PostgreSQL's CPU."""
    assert api.pid is not None
    rows = []
    with ProcessPoolExecutor(max_workers=1) as pool:
        for load in loads:
            spy = _profiler(api.pid, load, profile)
            before, pg_before = cpu_seconds(api.pid), postgres_cpu(pg_data)
            outcome = pool.submit(run_load, load).result()
            used = cpu_seconds(api.pid) - before
            pg_after = postgres_cpu(pg_data)
            pg_used = sum(s - pg_before.get(pid, 0.0) for pid, s in pg_after.items())
            if spy is not None:
                spy.wait()
            ops = max(outcome.ok + outcome.conflicts + outcome.errors, 1)
            rows.append(Row(outcome, 1000 * used / ops, 1000 * pg_used / ops))
    return rows


def table(rows: list[Row]) -> str:
    """A markdown table of the runs, with each rate as a ratio of the /readyz rate."""
    reference = next((r.outcome.rate for r in rows if r.outcome.scenario == "readyz"), 0.0)
    lines = [
        "| scenario | clients | ok/s | 409/s | errors | p50 ms | p99 ms | vs /readyz"
        " | API CPU ms/op | PostgreSQL CPU ms/op |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        o = row.outcome
        ratio = o.rate / reference if reference else float("nan")
        lines.append(
            f"| {o.scenario} | {o.clients} | {o.rate:.0f} | {o.conflicts / o.seconds:.0f} |"
            f" {o.errors} | {o.percentile(0.5):.1f} | {o.percentile(0.99):.1f} |"
            f" {ratio:.2f} | {row.cpu_ms_per_op:.2f} | {row.pg_cpu_ms_per_op:.2f} |"
        )
    return "\n".join(lines)


def scenarios(
    url: str, args: argparse.Namespace, tokens: list[str], spread: Hall, big: Hall
) -> list[Load]:
    """Warm-up, the /readyz reference, holds spread and concentrated, then hold + pay."""
    n, s = args.clients, args.seconds
    return [
        Load("warmup", url, 2, n, tokens, spread),
        Load("readyz", url, s, n, tokens),
        Load("spread", url, s, n, tokens, spread),
        Load("concentrated", url, s, n, tokens, big),
        Load("hold_pay", url, s, 1, tokens, spread),
        Load("hold_pay", url, s, n, tokens, spread),
    ]


def main() -> None:
    """Set up, measure, print, and optionally write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOC.relative_to(ROOT)}")
    parser.add_argument("--profile", type=Path, help="write py-spy collapsed stacks here")
    args = parser.parse_args()
    server = start_server("bench-holds", durable=True)
    api = None
    try:
        dsn = create_database(server.admin_dsn, "holds", drop_existing=True)
        upgrade(ROOT / "regional_api" / "migrations", dsn)
        spread, big = seed(dsn)
        issuer = TestIssuer(kid="bench-key")
        tokens = [issuer.token(sub=f"bench-user-{i}", ttl=3600) for i in range(args.clients)]
        with tempfile.TemporaryDirectory(prefix="bench-holds-") as tmp:
            api = start_api(dsn, issuer, Path(tmp))
            loads = scenarios(api.url, args, tokens, spread, big)
            rows = measure(api, loads, args.profile, getattr(server, "data_dir", Path("/nowhere")))[
                1:
            ]
            api.stop()
    finally:
        if api is not None:
            api.stop()
        server.stop()
    report = table(rows)
    print(report)
    if args.write:
        write_doc(report, args)


def write_doc(report: str, args: argparse.Namespace) -> None:
    """Rewrite docs/benchmarks/holds.md with this run's table (the analysis is kept by hand)."""
    text = DOC.read_text() if DOC.exists() else ""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    load = os.getloadavg()
    block = (
        f"{start}\n`.venv/bin/python -m benchmarks.holds --seconds {args.seconds:g}"
        f" --clients {args.clients} --write` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
        f" {os.cpu_count()} CPUs, load average {load[0]:.1f} at the end.\n\n{report}\n{end}"
    )
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = f"# Seat holds benchmark\n\n{block}\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


if __name__ == "__main__":
    main()
