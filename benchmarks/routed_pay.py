"""Hold+pay at one connection count, straight to a replica and through the router, alternated.

Run: `.venv/bin/python -m benchmarks.routed_pay [--seconds 6] [--clients 64] [--rounds 2]`.
Starts the whole local stack (the suite's `system.start_stack`, 300 ms simulated provider),
warms it up as `make bench` does, then runs `make bench`'s `hold_pay spread` load on each target
in turn, `--rounds` times, each on fresh shows. Prints one JSON line per run and a table,
with the requests that waited in the router's line for a slot of eu-west and how long in all.
"""

import argparse
import json
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import httpx

from benchmarks.holds import Load
from benchmarks.suite import loads, system
from harness.procs import metric


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each run")
    parser.add_argument("--clients", type=int, default=64, help="connections of each run")
    parser.add_argument("--rounds", type=int, default=2, help="direct + router pairs")
    return parser.parse_args(argv)


def line_waits(router_url: str) -> tuple[float, float]:
    """Requests eu-west's line admitted so far, and the seconds they waited in all."""
    with httpx.Client(base_url=router_url) as client:
        return (
            metric(client, "router_line_waits_total", region=loads.REGION, outcome="admitted"),
            metric(client, "router_line_wait_seconds_sum", region=loads.REGION),
        )


def main(argv: list[str] | None = None) -> None:
    """Start the stack, alternate the two targets, print the figures."""
    args = parse_args(argv)
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
