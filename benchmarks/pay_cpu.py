"""App CPU per payment, regional_api against the floor, without a network or uvicorn.

Run: `.venv/bin/python -m benchmarks.pay_cpu [--before OLD_TREE] [--rounds 3] [--requests 600]
[--keyed] [--profile DIR]`. The payment's twin of `benchmarks/hold_cpu.py` (same PostgreSQL
set-up, the same child per version, apps built the same way): each child holds `requests` seats
(one each, through the app, not timed), then pays every reservation with the test card through
ASGI calls one after the other and reads its own CPU time (`time.process_time`) around the
payments only. The provider is the in-process simulator answering at once, as in
`benchmarks.floor_bench`. `--keyed` sends an Idempotency-Key with every hold and payment (as
the web client does; the floor ignores it). `--profile DIR` also records each child's payments
with py-spy (200 Hz, collapsed stacks, `DIR/pay-<version>.txt`); its CPU figures then include
py-spy's pauses of the process, so take them from a run without it.
"""

import argparse
import asyncio
import cProfile
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import hold_cpu
from benchmarks.holds import seed_hall
from benchmarks.suite.profile import py_spy
from common.ids import new_id
from common.migrate import upgrade
from harness.pg import create_database, start_server
from harness.tokens import TestIssuer

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 150
COLS = 50
CARD = {"method": "card", "card_number": "4242424242424242"}
INSTANT = {"REGIONAL_PAYMENT_PROVIDER_LATENCY_MS": "0", "FLOOR_PROVIDER_LATENCY_MS": "0"}


async def _post(app: Any, path: str, token: str, body: dict[str, Any], key: bool) -> bytes:
    """One POST through the app's ASGI interface; its status and body, as `STATUS BODY`."""
    raw = json.dumps(body).encode()
    scope = hold_cpu._scope(path, token, raw, uuid.uuid4().hex if key else None)
    parts: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            parts.append(b"%d " % message["status"])
        elif message.get("body"):
            parts.append(message["body"])

    await app(scope, receive, send)
    return b"".join(parts)


async def _hold(app: Any, show: str, seat: int, token: str, key: bool) -> str:
    answer = await _post(app, f"/shows/{show}/holds", token, {"seat_ids": [seat]}, key)
    assert answer.startswith(b"201 "), answer[:300]
    reservation_id: str = json.loads(answer[4:])["id"]
    return reservation_id


async def _pay(app: Any, rid: str, token: str, key: bool) -> int:
    answer = await _post(app, f"/reservations/{rid}/payments", token, CARD, key)
    return int(answer[:3])


def _spy(out: str) -> subprocess.Popen[bytes]:
    """py-spy recording this process until it is interrupted (collapsed stacks)."""
    binary = py_spy()
    assert binary is not None, "py-spy is not installed"
    command = [binary, "record", "-p", str(os.getpid()), "-r", "200", "--nonblocking"]
    command += ["--format", "raw", "-o", out]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the payments start
    return spy


async def _drive(kind: str, job: dict[str, Any]) -> dict[str, float]:
    app = hold_cpu._app(kind, job["env"])
    token, key = job["token"], job["keyed"]
    slots = [(show, seat) for show in job["shows"] for seat in job["seats"]]
    statuses: dict[int, int] = {}
    async with app.router.lifespan_context(app):
        for show, seat in slots[:WARMUP]:
            await _pay(app, await _hold(app, show, seat, token, key), token, key)
        held = [
            await _hold(app, show, seat, token, key)
            for show, seat in slots[WARMUP : WARMUP + job["requests"]]
        ]
        spy = _spy(job["profile"]) if job.get("profile") else None
        counted = cProfile.Profile(time.process_time) if job.get("cprofile") else None
        started = time.process_time()
        if counted is not None:
            counted.enable()
        for rid in held:
            status = await _pay(app, rid, token, key)
            statuses[status] = statuses.get(status, 0) + 1
        if counted is not None:
            counted.disable()
            counted.dump_stats(job["cprofile"])
        spent = time.process_time() - started
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
    return {"us_per_pay": spent / job["requests"] * 1e6, "paid": statuses.get(201, 0)}


def _profile_name(name: str) -> str:
    return {"regional_api (this tree)": "regional_api", "regional_api (before)": "before"}.get(
        name, name
    )


def run(args: argparse.Namespace) -> dict[str, list[float]]:
    """Alternate the versions' children over one PostgreSQL; each one's µs per payment."""
    versions = hold_cpu.versions_of(args.before)
    seen: dict[str, list[float]] = {name: [] for name in versions}
    rows = -(-(WARMUP + args.requests) // COLS)
    server = start_server("bench-pay-cpu")
    try:
        dsn = create_database(server.admin_dsn, "paycpu", drop_existing=True)
        upgrade(ROOT / "regional_api" / "migrations", dsn)
        issuer = TestIssuer(kid="bench-pay-cpu")
        with tempfile.TemporaryDirectory(prefix="pay-cpu-") as tmp:
            jwks_file = Path(tmp) / "jwks.json"
            jwks_file.write_text(json.dumps(issuer.jwks))
            with psycopg.connect(dsn, autocommit=True) as conn:
                cinema_id = new_id("cin", hold_cpu.REGION)
                conn.execute(
                    "INSERT INTO cinemas (id, name, city, timezone)"
                    " VALUES (%s, 'Bench', 'Paris', 'UTC')",
                    (cinema_id,),
                )
                for round_ in range(args.rounds):
                    order = list(versions.items())
                    for name, kind in order if round_ % 2 == 0 else order[::-1]:
                        hall = seed_hall(conn, cinema_id, rows, COLS, 1, region=hold_cpu.REGION)
                        job = {
                            "env": hold_cpu._env(dsn, jwks_file) | INSTANT,
                            "seats": hall.seat_ids,
                            "shows": hall.show_ids,
                            "token": issuer.token(sub=f"pay-user-{round_}-{kind[-6:]}", ttl=3600),
                            "requests": args.requests,
                            "keyed": args.keyed,
                        }
                        if args.profile and round_ == 0:
                            args.profile.mkdir(parents=True, exist_ok=True)
                            out = args.profile / f"pay-{_profile_name(name)}.txt"
                            job["profile"] = str(out.resolve())
                        if args.cprofile and round_ == 0:
                            args.cprofile.mkdir(parents=True, exist_ok=True)
                            out = args.cprofile / f"pay-{_profile_name(name)}.pstats"
                            job["cprofile"] = str(out.resolve())
                        figures = hold_cpu.measure(kind, job, __file__)
                        assert figures["paid"] == args.requests, figures
                        seen[name].append(figures["us_per_pay"])
    finally:
        server.stop()
    return seen


def main() -> None:
    """Measure, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="another source tree of regional_api")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--keyed", action="store_true", help="an Idempotency-Key on every write")
    parser.add_argument("--profile", type=Path, help="py-spy each version's first child here")
    parser.add_argument(
        "--cprofile", type=Path, help="cProfile (CPU time) each version's first child here"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_drive(args.child, json.loads(sys.stdin.read())))))
        return
    seen = run(args)
    floor = statistics.median(seen["floor"])
    print("| app | µs of CPU per payment (median) | runs | ratio to the floor |")
    print("|---|---:|---|---:|")
    for name, runs in seen.items():
        cell = ", ".join(f"{one:.0f}" for one in runs)
        median = statistics.median(runs)
        print(f"| {name} | {median:.0f} | {cell} | {median / floor:.2f} |")


if __name__ == "__main__":
    main()
