"""CPU per hot read: GET /shows/{id} and its seat map, uncached, cached and answered 304.

Run: `.venv/bin/python -m benchmarks.reads [--seconds 2] [--clients 32] [--code DIR]
[--phases uncached,cached,cold]`. Starts its own PostgreSQL, migrates it and seeds a 16 x 24
hall (384 seats) with 200 shows, each a third sold and a twelfth held, then runs ONE
regional_api worker per phase: `uncached` (cache off, a random show each read, after every show
was read once), `cached` (250 ms: cached reads and 304s of one hot show) and `cold` (cache off
and one show kept: nearly every read reads its show's facts or layout again). A separate process
drives it with aiohttp; CPU comes from /proc: the API process, and every PostgreSQL process
(backends and background). `--code DIR` serves the API from another checkout, for a
before/after on the same machine (`git archive main | tar -x -C DIR`).
"""

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from benchmarks.holds import ROOT, cpu_seconds, postgres_cpu, seed_hall, start_api
from benchmarks.suite import profile as suite_profile
from common.ids import new_id
from common.migrate import upgrade
from deploy.local.processes import ServiceProcess
from harness.pg import create_database, start_server
from harness.tokens import TestIssuer

ISSUER = TestIssuer(kid="bench-key")


@dataclass(frozen=True)
class Reads:
    """One load: `clients` readers GET random `paths` for `seconds`, with an ETag or without."""

    name: str
    url: str
    paths: list[str]
    seconds: float
    clients: int
    etag: str | None = None
    token: str | None = None


@dataclass
class Outcome:
    """What the readers saw: answers by status and the latencies of 200s and 304s."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """Latency percentile in ms."""
        ordered = sorted(self.latencies_ms) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _drive(load: Reads) -> Outcome:
    import aiohttp

    outcome = Outcome()
    headers = {"If-None-Match": load.etag} if load.etag else {}
    if load.token:
        headers["Authorization"] = f"Bearer {load.token}"
    connector = aiohttp.TCPConnector(limit=load.clients)
    async with aiohttp.ClientSession(load.url, connector=connector) as http:
        deadline = time.perf_counter() + load.seconds

        async def reader(index: int) -> None:
            rng = random.Random(index)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with http.get(rng.choice(load.paths), headers=headers) as response:
                    await response.read()
                    status = response.status
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                if status in (200, 304):
                    outcome.latencies_ms.append(1000 * (time.perf_counter() - started))

        await asyncio.gather(*(reader(i) for i in range(load.clients)))
    return outcome


def run_reads(load: Reads) -> Outcome:
    """Entry point of the load-generator process."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    return asyncio.run(_drive(load))


# Each show half taken: a third of its seats sold, a twelfth held, one in 24 held past its
# deadline (free again). No parameters: `%` is SQL's.
_TAKE = """
INSERT INTO reservations (id, show_id, cinema_id, user_id, channel, status, hold_expires_at,
                          amount_minor, currency, created_at, confirmed_at)
SELECT id || kind, id, cinema_id, 'bench-owner', 'online',
       CASE kind WHEN '-sold' THEN 'confirmed' ELSE 'held' END,
       CASE kind WHEN '-held' THEN now() + interval '1 day'
                 WHEN '-lapsed' THEN now() - interval '1 minute' END,
       0, currency, now(), CASE kind WHEN '-sold' THEN now() END
FROM shows, (VALUES ('-sold'), ('-held'), ('-lapsed')) k (kind);
UPDATE show_seats SET
    status = CASE WHEN seat_id % 3 = 0 THEN 'sold' ELSE 'held' END,
    reservation_id = show_id || CASE WHEN seat_id % 3 = 0 THEN '-sold'
                                     WHEN seat_id % 12 = 1 THEN '-held' ELSE '-lapsed' END,
    held_until = CASE WHEN seat_id % 3 = 0 THEN NULL
                      WHEN seat_id % 12 = 1 THEN now() + interval '1 day'
                      ELSE now() - interval '1 minute' END
WHERE seat_id % 3 = 0 OR seat_id % 12 = 1 OR seat_id % 24 = 2;
"""


def seed(dsn: str) -> list[str]:
    """A cinema with one 384-seat hall and 200 shows, each half sold; their ids."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cinema_id = new_id("cin", "eu-west")
        conn.execute(
            "INSERT INTO cinemas (id, name, city, timezone) VALUES (%s, 'Bench', 'Paris', 'UTC')",
            (cinema_id,),
        )
        hall = seed_hall(conn, cinema_id, 16, 24, 200)
        conn.execute(_TAKE)
        conn.execute("VACUUM ANALYZE")
    return hall.show_ids


def sessions(dsn: str) -> int:
    """PostgreSQL sessions ever opened on the benchmark's database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def measure(
    api: ServiceProcess, load: Reads, pg_data: Path, dsn: str, profile: Path | None = None
) -> str:
    """Run one load in a generator process (py-spy samples the API into `profile`); its row."""
    assert api.pid is not None
    name = load.name.split(" (")[0].replace(", ", "-").replace(" ", "-").strip("/")
    spy = suite_profile.start(api.pid, load.seconds, profile / f"{name}.txt") if profile else None
    with ProcessPoolExecutor(max_workers=1) as pool:
        opened = sessions(dsn)
        before, pg_before = cpu_seconds(api.pid), postgres_cpu(pg_data)
        outcome = pool.submit(run_reads, load).result()
        api_ms = cpu_seconds(api.pid) - before
        pg_ms = sum(s - pg_before.get(pid, 0.0) for pid, s in postgres_cpu(pg_data).items())
    if spy is not None:
        spy.wait()
    reads = max(sum(outcome.statuses.values()), 1)
    api_ms, pg_ms = 1000 * api_ms / reads, 1000 * pg_ms / reads
    answers = ", ".join(f"{n} x {status}" for status, n in sorted(outcome.statuses.items()))
    return (
        f"| {load.name} | {reads / load.seconds:.0f} | {outcome.percentile(0.5):.1f} |"
        f" {outcome.percentile(0.99):.1f} | {answers} | {api_ms:.3f} | {pg_ms:.3f} |"
        f" {api_ms + pg_ms:.3f} | {sessions(dsn) - opened - 1} |"
    )


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """Set environment variables for the processes started in the block."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _etag(url: str) -> str | None:
    etag: str | None = httpx.get(url, timeout=30).headers.get("etag")
    return etag


def _customer(url: str, shows: list[str]) -> str:
    """A customer's token, once the customer holds a seat in each of 10 shows."""
    token = ISSUER.token(sub="bench-reader", ttl=3600)
    with httpx.Client(base_url=url, timeout=30) as client:
        for show_id in shows[:10]:
            seats = client.get(f"/shows/{show_id}/seats").json()["seats"]
            seat = next(s["seat_id"] for s in seats if s["status"] == "free")
            auth = {"Authorization": f"Bearer {token}"}
            held = client.post(f"/shows/{show_id}/holds", json={"seat_ids": [seat]}, headers=auth)
            held.raise_for_status()
    return token


def _visit(url: str, shows: list[str]) -> None:
    """Read every show and seat map once (a replica that has served them for a while)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for show_id in shows:
            client.get(f"/shows/{show_id}").raise_for_status()
            client.get(f"/shows/{show_id}/seats").raise_for_status()


def loads(url: str, shows: list[str], args: argparse.Namespace, *, phase: str) -> list[Reads]:
    """Uncached reads of random shows, or cached reads and 304s of one hot show."""
    n, s = args.clients, args.seconds
    every = [f"/shows/{i}" for i in shows] + [f"/shows/{i}/seats" for i in shows]
    warm_up = Reads("warm-up (not measured)", url, every, 1.0, n)
    if phase == "cold":
        return [
            warm_up,
            Reads("show, uncached, layout not kept", url, [f"/shows/{i}" for i in shows], s, n),
            Reads("seat map, uncached, layout not kept", url, every[len(shows) :], s, n),
        ]
    if phase == "uncached":
        _visit(url, shows)
        mine = ["/me/reservations"]
        return [
            warm_up,
            Reads("/healthz (the request pipeline alone)", url, ["/healthz"], s, n),
            Reads("show, uncached", url, [f"/shows/{i}" for i in shows], s, n),
            Reads("seat map, uncached", url, every[len(shows) :], s, n),
            Reads("my reservations (10)", url, mine, s, n, token=_customer(url, shows)),
        ]
    show, seats = f"/shows/{shows[0]}", f"/shows/{shows[0]}/seats"
    return [
        Reads("warm-up (not measured)", url, [show, seats], 1.0, n),
        Reads("show, cached", url, [show], s, n),
        Reads("seat map, cached", url, [seats], s, n),
        Reads("show, 304", url, [show], s, n, _etag(url + show)),
        Reads("seat map, 304", url, [seats], s, n, _etag(url + seats)),
    ]


def run(args: argparse.Namespace) -> list[str]:
    """Start PostgreSQL and the API (cache off, then on), measure every load; the table rows."""
    server = start_server("bench-reads")
    pg_data = getattr(server, "data_dir", Path("/nowhere"))
    rows = []
    try:
        dsn = create_database(server.admin_dsn, "reads", drop_existing=True)
        upgrade(ROOT / "regional_api" / "migrations", dsn)
        shows = seed(dsn)
        for phase in args.phases.split(","):
            with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
                age = "250" if phase == "cached" else "0"
                # One entry: nearly every read of a random show reads its layout again.
                entries = "1" if phase == "cold" else "512"
                settings = {"REGIONAL_SHOW_CACHE_MAX_AGE_MS": age}
                settings["REGIONAL_SHOW_CACHE_MAX_ENTRIES"] = entries
                with contextlib.chdir(args.code or ROOT), _env(**settings):
                    # `python -m uvicorn` imports the app from the working directory.
                    api = start_api(dsn, ISSUER, Path(tmp))
                try:
                    for load in loads(api.url, shows, args, phase=phase):
                        row = measure(api, load, pg_data, dsn, args.profile)
                        if not load.name.startswith("warm-up"):
                            rows.append(row)
                            print(row, flush=True)
                finally:
                    api.stop()
    finally:
        server.stop()
    return rows


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--code", type=Path, help="serve regional_api from this checkout")
    parser.add_argument("--profile", type=Path, help="write py-spy samples of the API here")
    parser.add_argument(
        "--phases",
        default="uncached,cached,cold",
        help="uncached (cache off), cached (250 ms) and cold (cache off, one layout kept)",
    )
    args = parser.parse_args()
    print(
        "| read | reads/s | p50 ms | p99 ms | answers | API CPU ms/read"
        " | PostgreSQL CPU ms/read | total CPU ms/read | new PG sessions |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    run(args)


if __name__ == "__main__":
    main()
