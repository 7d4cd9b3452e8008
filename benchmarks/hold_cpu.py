"""App CPU per one-seat hold, regional_api against the floor, without a network or uvicorn.

Run: `.venv/bin/python -m benchmarks.hold_cpu [--before OLD_TREE] [--rounds 3]
[--requests 1500] [--keyed]` (`--keyed`: each hold with an Idempotency-Key, as the web client
sends them; the floor ignores keys). One PostgreSQL (a hall seeded per measurement), then per round one child
process per version: regional_api from this tree, from `--before` (e.g. `git archive <commit> |
tar -x -C OLD_TREE`) and the floor (`benchmarks/floor.py`). Each child builds the app as the
launchers configure it (log level INFO, admission control on), runs its lifespan, sends
`requests` holds of one free seat each through ASGI calls one after the other (after a warm-up)
and reads its own CPU time (`time.process_time`): the app's work per hold, the statement's
round trip included, uvicorn's HTTP parsing excluded (the same for every app). CPU time of one
process is blurred far less by a loaded machine than the HTTP benchmark's (`floor_bench`);
children alternate between the versions and medians are reported, of the mean per hold and of
the least batch of 100 holds (the cost with the least interference from other processes), and
the function calls per hold (`sys.setprofile`, 50 more holds), which no other load changes.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.holds import seed_hall
from common.ids import new_id
from common.migrate import upgrade
from deploy.local.topology import REGIONAL_ADMISSION
from harness.pg import create_database, start_server
from harness.tokens import TestIssuer

ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-west"
WARMUP = 300
CALLS = 50  # holds counted for their function calls, after the timed ones
BATCH = 100  # holds per timed batch: the least batch is the cost with the least interference
COLS = 50


def _scope(path: str, token: str, body: bytes, key: str | None) -> dict[str, Any]:
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if key is not None:  # as the web client sends its holds
        headers.append((b"idempotency-key", key.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _hold(app: Any, show_id: str, seat_id: int, token: str, keyed: bool) -> int:
    """One hold through the app's ASGI interface; its status."""
    body = json.dumps({"seat_ids": [seat_id]}).encode()
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    key = f"{show_id}-{seat_id}" if keyed else None
    await app(_scope(f"/shows/{show_id}/holds", token, body, key), receive, send)
    return status


def _app(kind: str, env: dict[str, str]) -> Any:
    os.environ.update(env)
    if kind == "floor":
        from benchmarks.floor import create_app as floor_app

        return floor_app()
    from regional_api.config import settings_from_env
    from regional_api.main import create_app

    jwks = json.loads(Path(env["FLOOR_JWKS_FILE"]).read_text())
    return create_app(settings_from_env(), jwks=jwks)


async def _drive(kind: str, job: dict[str, Any]) -> dict[str, float]:
    app = _app(kind, job["env"])
    seats, shows, token = job["seats"], job["shows"], job["token"]
    slots = [(show, seat) for show in shows for seat in seats]
    statuses: dict[int, int] = {}
    async with app.router.lifespan_context(app):
        for show, seat in slots[:WARMUP]:
            await _hold(app, show, seat, token, job["keyed"])
        batches: list[float] = []
        measured = slots[WARMUP : WARMUP + job["requests"]]
        for first in range(0, len(measured), BATCH):
            started = time.process_time()
            for show, seat in measured[first : first + BATCH]:
                status = await _hold(app, show, seat, token, job["keyed"])
                statuses[status] = statuses.get(status, 0) + 1
            batches.append((time.process_time() - started) / len(measured[first : first + BATCH]))
        calls = await _calls(app, slots[WARMUP + job["requests"] :][:CALLS], token, job["keyed"])
    return {
        "us_per_hold": sum(batches) / len(batches) * 1e6,
        "least": min(batches) * 1e6,
        "calls": calls,
        "created": statuses.get(201, 0),
    }


async def _calls(app: Any, slots: list[tuple[str, int]], token: str, keyed: bool) -> float:
    """Python and C function calls per hold (`sys.setprofile`): a count no other load blurs."""
    count = 0

    def counter(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(counter)
    try:
        for show, seat in slots:
            await _hold(app, show, seat, token, keyed)
    finally:
        sys.setprofile(None)
    return count / len(slots)


def _env(dsn: str, jwks_file: Path) -> dict[str, str]:
    regional = {
        "REGIONAL_REGION": REGION,
        "REGIONAL_DATABASE_URL": dsn,
        "REGIONAL_LOG_LEVEL": "INFO",
        "REGIONAL_DB_POOL_SIZE": "20",
        "REGIONAL_MAX_SEATS_PER_CUSTOMER_SHOW": "100000",
    }
    floor = {"FLOOR_DATABASE_URL": dsn, "FLOOR_JWKS_FILE": str(jwks_file), "FLOOR_REGION": REGION}
    return REGIONAL_ADMISSION | regional | floor


# The child imports everything from the tree it measures, as uvicorn's --app-dir does.
CHILD = (
    "import runpy, sys; sys.path[:0] = [sys.argv.pop(1)]; runpy.run_path({!r}, run_name='__main__')"
)


def measure(kind: str, job: dict[str, Any], script: str = __file__) -> dict[str, float]:
    """One child process of `script` measuring `kind` (a source tree, or "floor"); stderr to
    /dev/null."""
    tree = str(ROOT) if kind == "floor" else kind
    command = [sys.executable, "-c", CHILD.format(script), tree, "--child", kind]
    out = subprocess.run(
        command,
        input=json.dumps(job).encode(),
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def versions_of(before: Path | None) -> dict[str, str]:
    """The versions to measure, by name: this tree, `before`'s if given, and the floor."""
    versions = {"regional_api (this tree)": str(ROOT)}
    if before:
        versions["regional_api (before)"] = str(before.resolve())
    return versions | {"floor": "floor"}


def main() -> None:
    """Alternate the versions' children over one PostgreSQL, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="another source tree of regional_api")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--keyed", action="store_true", help="each hold with an Idempotency-Key")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_drive(args.child, json.loads(sys.stdin.read())))))
        return
    versions = versions_of(args.before)
    seen: dict[str, list[float]] = {name: [] for name in versions}
    least: dict[str, list[float]] = {name: [] for name in versions}
    calls: dict[str, list[float]] = {name: [] for name in versions}
    rows = -(-(WARMUP + args.requests + CALLS) // COLS)
    server = start_server("bench-hold-cpu")
    try:
        dsn = create_database(server.admin_dsn, "holdcpu", drop_existing=True)
        upgrade(ROOT / "regional_api" / "migrations", dsn)
        issuer = TestIssuer(kid="bench-hold-cpu")
        with tempfile.TemporaryDirectory(prefix="hold-cpu-") as tmp:
            jwks_file = Path(tmp) / "jwks.json"
            jwks_file.write_text(json.dumps(issuer.jwks))
            with psycopg.connect(dsn, autocommit=True) as conn:
                cinema_id = new_id("cin", REGION)
                conn.execute(
                    "INSERT INTO cinemas (id, name, city, timezone)"
                    " VALUES (%s, 'Bench', 'Paris', 'UTC')",
                    (cinema_id,),
                )
                for _ in range(args.rounds):
                    for name, kind in versions.items():
                        hall = seed_hall(conn, cinema_id, rows, COLS, 1, region=REGION)
                        job = {
                            "env": _env(dsn, jwks_file),
                            "seats": hall.seat_ids,
                            "shows": hall.show_ids,
                            "token": issuer.token(
                                sub=f"bench-user-{len(seen[name])}-{kind[-6:]}", ttl=3600
                            ),
                            "requests": args.requests,
                            "keyed": args.keyed,
                        }
                        figures = measure(kind, job)
                        assert figures["created"] == args.requests, figures
                        seen[name].append(figures["us_per_hold"])
                        least[name].append(figures["least"])
                        calls[name].append(figures["calls"])
    finally:
        server.stop()
    floor, floor_least = statistics.median(seen["floor"]), statistics.median(least["floor"])
    print(
        f"| app | µs of CPU per hold (median) | runs | ratio to the floor"
        f" | least batch of {BATCH} (median) | runs | ratio | function calls per hold |"
    )
    print("|---|---:|---|---:|---:|---|---:|---:|")
    for name, runs in seen.items():
        cell = ", ".join(f"{run:.0f}" for run in runs)
        best = ", ".join(f"{run:.0f}" for run in least[name])
        median, low = statistics.median(runs), statistics.median(least[name])
        print(
            f"| {name} | {median:.0f} | {cell} | {median / floor:.2f}"
            f" | {low:.0f} | {best} | {low / floor_least:.2f} | {statistics.median(calls[name]):.0f} |"
        )


if __name__ == "__main__":
    main()
