"""Hold+pay at one connection count, straight to a replica and through the router, alternated.

Run: `.venv/bin/python -m benchmarks.routed_pay [--seconds 6] [--clients 64] [--rounds 2]`.
Starts the whole local stack (the suite's `system.start_stack`, 300 ms simulated provider),
warms it up as `make bench` does, then runs `make bench`'s `hold_pay spread` load on each target
in turn, `--rounds` times, each on fresh shows. Prints one JSON line per run and a table,
with the requests that waited in the router's line for a slot of eu-west and how long in all.

`--stand-in` measures the router's rules alone: two echo upstreams (`harness.upstream_app`)
as eu-west, whose hold answers at once and whose payment after 300 ms, so CPU hardly matters.
"""

import argparse
import asyncio
import json
import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from benchmarks.holds import Load
from benchmarks.suite import loads, system
from common.ids import new_id
from harness.live import live_server
from harness.procs import FakeDirectory, directory_map, metric, router, upstream
from harness.tokens import TestIssuer

PROVIDER_SECONDS = 0.3  # the stand-in's payment, as the simulated provider's latency


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each run")
    parser.add_argument("--clients", type=int, default=64, help="connections of each run")
    parser.add_argument("--rounds", type=int, default=2, help="direct + router pairs")
    parser.add_argument("--stand-in", action="store_true", help="echo upstreams, not the stack")
    return parser.parse_args(argv)


def line_waits(router_url: str) -> tuple[float, float]:
    """Requests eu-west's line admitted so far, and the seconds they waited in all."""
    with httpx.Client(base_url=router_url) as client:
        return (
            metric(client, "router_line_waits_total", region=loads.REGION, outcome="admitted"),
            metric(client, "router_line_wait_seconds_sum", region=loads.REGION),
        )


async def _hold_pay(url: str, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` loops of a hold then a payment for `seconds`: operations per second."""
    hold = f"{url}/shows/{new_id('show', loads.REGION)}/holds"
    pay = f"{url}/reservations/{new_id('res', loads.REGION)}/payments?sleep={PROVIDER_SECONDS}"
    done = {"ok": 0, "errors": 0}
    stop = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            statuses = []
            for target in (hold, pay):
                async with session.post(target, json={}) as response:
                    await response.read()
                    statuses.append(response.status)
            done["ok" if statuses == [200, 200] else "errors"] += 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return done | {"ok_per_s": round(done["ok"] / seconds, 1)}


def stand_in(args: argparse.Namespace) -> None:
    """Alternate direct (one echo upstream) and routed (both) hold+pay runs."""
    with tempfile.TemporaryDirectory() as tmp:
        ups = [upstream(name, loads.REGION, Path(tmp) / "writes.log") for name in ("a", "b")]
        document = directory_map("v1", {loads.REGION: [u.url for u in ups]}, {})
        settings = {"rate_limit_enabled": "false", "max_connections_per_client": 100_000}
        try:
            for proc in ups:
                proc.start()
            with (
                live_server(FakeDirectory(document, TestIssuer().jwks)) as directory,
                router(directory, **settings).running() as router_url,
            ):
                for _ in range(args.rounds):
                    for target, url in (("direct", ups[0].url), ("router", router_url)):
                        row = asyncio.run(_hold_pay(url, args.clients, args.seconds))
                        print(json.dumps({"target": target} | row), flush=True)
        finally:
            for proc in ups:
                proc.kill()


def main(argv: list[str] | None = None) -> None:
    """Start the stack, alternate the two targets, print the figures."""
    args = parse_args(argv)
    if args.stand_in:
        stand_in(args)
        return
    rows: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        stack = system.start_stack(progress=lambda _: None)
        try:
            tokens = system.tokens(stack, args.clients, "routed-pay")
            plan = loads.Plan(args.seconds, (args.clients,), tokens)
            loads.warm_up(stack, pool, plan)
            for _ in range(args.rounds):
                for target, url in loads.targets(stack).items():
                    hall = loads.fresh_hall(stack, "spread")
                    load = Load("hold_pay", url, args.seconds, args.clients, tokens, hall)
                    before = line_waits(stack.router_url)
                    row = {"target": target} | loads.measured(pool, load, stack)
                    after = line_waits(stack.router_url)
                    row["line_waits"] = after[0] - before[0]
                    row["line_wait_s"] = round(after[1] - before[1], 2)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        finally:
            stack.stop()
            shutil.rmtree(stack.paths.root, ignore_errors=True)
    print("| target | ok/s | p50 ms | p99 ms | 409s | errors | router CPU ms/op | line waits, s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        router_cpu = row["cpu_ms_per_op"].get("router", 0.0) if row["target"] == "router" else "-"
        print(
            f"| {row['target']} | {row['ok_per_s']:.0f} | {row['p50_ms']:.0f} |"
            f" {row['p99_ms']:.0f} | {row['conflicts']} | {row['errors']} | {router_cpu} |"
            f" {row['line_waits']:.0f}, {row['line_wait_s']} |"
        )


if __name__ == "__main__":
    main()
