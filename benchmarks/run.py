"""The benchmark suite: `make bench` (= `python -m benchmarks.run [--quick]`).

Measures, in one run on 127.0.0.1: the pgbench reference for durable seat writes, the floor
(regional_api against a minimal app running the same statements, `benchmarks/floor_bench.py`),
holds and hold+pay direct and through the router, a hot on-sale, router overhead against nginx,
one vs two regions, peak memory of every process, and a py-spy profile; then writes
docs/benchmarks/ (README.md, chart.png, results.json, profiles/).
"""

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import floor_bench, onsale_line
from benchmarks import router as router_bench
from benchmarks.holds import Load, run_load
from benchmarks.suite import loads, machine, pgbench, profile, report, system
from benchmarks.suite.onsale import OnSale, run_rush
from deploy.local.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks"
QUICK_OUT = ROOT / "var" / "bench-quick"
ONSALE_CLIENTS = 2000
FLOOR_ROUNDS, FLOOR_SECONDS = 2, 2.0


def log(message: str) -> None:
    """Progress on stderr, flushed (the run takes minutes)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer, shorter runs (16 connections, no router/nginx, regions or profile runs),"
        f" written to {QUICK_OUT.relative_to(ROOT)}",
    )
    parser.add_argument("--seconds", type=float, help="length of each load run")
    parser.add_argument(
        "--out", type=Path, help=f"output folder (default {DOCS.relative_to(ROOT)})"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy run")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (2.0 if args.quick else 5.0)
    args.out = args.out or (QUICK_OUT if args.quick else DOCS)
    args.clients = (16,) if args.quick else (1, 16, 64)
    return args


def profiled_run(
    stack: LocalStack, pool: ProcessPoolExecutor, plan: loads.Plan, out: Path
) -> dict[str, Any]:
    """A routed hold+pay run at 16 connections with py-spy on the router and one replica."""
    hall = loads.fresh_hall(stack, "spread")
    spies = {}
    for name in ("router", "eu-west-1"):
        pid = stack.process(name).pid
        if pid and (spy := profile.start(pid, plan.seconds, out / f"{name}.txt")):
            spies[name] = spy
    if not spies:
        return {}
    pool.submit(
        run_load, Load("hold_pay", stack.router_url, plan.seconds, 16, plan.tokens, hall)
    ).result()
    summaries = {}
    for name, spy in spies.items():
        spy.wait(timeout=60)
        raw = out / f"{name}.txt"
        if raw.exists():
            summaries[name] = profile.summarise(raw.read_text())
    return summaries


def on_stack(args: argparse.Namespace, result: dict[str, Any], pool: ProcessPoolExecutor) -> None:
    """Every measurement that needs the whole system running."""
    # The large on-sale's rig has two routers (`onsale_line.LARGE_ROUTERS`); the other runs use
    # the first, the second only probes the regions meanwhile.
    routers = 1 if args.quick else onsale_line.LARGE_ROUTERS
    log(f"stack: starting (3 PostgreSQL servers, global_api, 3 regional_api, {routers} router(s))")
    stack = system.start_stack(progress=lambda _: None, routers=routers)
    peaks: dict[str, dict[str, float]] = {}
    phases: dict[str, dict[str, dict[str, float]]] = {}
    try:
        tokens = system.tokens(stack, ONSALE_CLIENTS, "bench")
        plan = loads.Plan(args.seconds, args.clients, tokens[:64])
        loads.warm_up(stack, pool, plan)
        log("holds and hold+pay: direct and routed")
        result["holds"] = loads.run_matrix(stack, pool, plan, log)
        phases["after the hold runs"] = system.memory(stack)
        if not args.quick:
            log("regions: one, then two at once")
            result["regions"] = loads.run_regions(stack, pool, plan, 64, log)
            phases["after the region runs"] = system.memory(stack)
        if not (args.quick or args.no_profile):
            log("profile: py-spy during a routed hold+pay run")
            result["profile"] = profiled_run(stack, pool, plan, args.out / "profiles")
        result["router_health_before_onsale"] = system.router_health(stack)
        rushes = {"router": stack.router_url, "direct": loads.targets(stack)["direct"]}
        for target, url in list(rushes.items())[: 1 if args.quick else 2]:
            log(f"hot on-sale ({target}): {ONSALE_CLIENTS} clients, one 300-seat show")
            hall = system.seed(stack, loads.REGION, rows=15, cols=20, shows=1)
            rush = pool.submit(run_rush, OnSale(url, tokens, hall)).result()
            rush |= system.leftovers(stack, loads.REGION, hall.show_ids[0])
            result["onsale" if target == "router" else f"onsale_{target}"] = rush
            log(f"  {json.dumps(rush)}")
            phases[f"after the on-sale ({target})"] = system.memory(stack)
        log(f"on-sale through the waiting room: {ONSALE_CLIENTS} clients, one 300-seat show")
        result["onsale_line"] = onsale_line.run(stack, pool, tokens)
        log(f"  {json.dumps({k: v for k, v in result['onsale_line'].items() if k != 'series'})}")
        phases["after the waiting-room on-sale"] = system.memory(stack)
        if not args.quick:
            log(f"on-sale through the waiting room: {onsale_line.LARGE:,} clients")
            result["onsale_line_large"] = large = onsale_line.run_large(stack, pool)
            log(f"  {json.dumps({k: v for k, v in large.items() if k != 'series'})}")
            phases["after the large waiting-room on-sale"] = system.memory(stack)
        for reading in phases.values():
            system.merge_peaks(peaks, reading)
        result["memory"] = peaks
        result["memory_phases"] = {
            phase: system.merge_peaks({}, reading) for phase, reading in phases.items()
        }
        result["router_health"] = system.router_health(stack)
    finally:
        stack.stop()
        shutil.rmtree(stack.paths.root, ignore_errors=True)  # PostgreSQL data, logs, keys


def floor_options(args: argparse.Namespace) -> floor_bench.Options:
    """The floor's runs: two interleaved rounds, pooled (`--quick`: one round of 1 s)."""
    # 2 x 20 runs of 2 s (one round of 3 s before: a single noisy round decided a ratio,
    # docs/benchmarks/floor.md "Seventh round"); --quick: 20 runs of 1 s, about a minute
    if args.quick:
        return floor_bench.Options(1.0)
    return floor_bench.Options(min(args.seconds, FLOOR_SECONDS), rounds=FLOOR_ROUNDS)


def main(argv: list[str] | None = None) -> None:
    """Measure everything, then write the report, the chart and the raw JSON."""
    args = parse_args(argv)
    started = time.monotonic()
    result: dict[str, Any] = {"meta": machine.describe()}
    result["meta"] |= {
        "command": "make bench ARGS=--quick" if args.quick else "make bench",
        "seconds": args.seconds,
        "quick": args.quick,
    }
    log("pgbench: durable one-INSERT seat writes")
    result["pgbench"] = pgbench.run(list(args.clients), args.seconds)
    log(f"  {result['pgbench']}")
    if not args.quick:
        log("router overhead: direct vs router vs nginx, regional endpoint and echo upstream")
        overhead, alternated = router_bench.run(max(1, round(args.seconds)))
        result["router_overhead"] = [asdict(r) for r in overhead]
        result["router_paired"] = [asdict(r) for r in alternated]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        log("the floor: regional_api against benchmarks/floor.py, same PostgreSQL, same run")
        floor = floor_options(args)
        result["floor"] = floor_bench.run(pool, floor, progress=log)
        on_stack(args, result, pool)
    result["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    result["meta"]["load_average_after"] = round(os.getloadavg()[0], 2)
    write(result, args.out)
    log(f"done in {result['meta']['duration_s']:.0f} s: {args.out}")


def write(result: dict[str, Any], out: Path) -> None:
    """results.json, chart.png and README.md in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    report.chart(result, out / "chart.png")
    for key, chart_file in onsale_line.VARIANTS.items():
        if result.get(key):
            onsale_line.chart(result[key], out / chart_file)
    (out / "README.md").write_text(report.render(result))


if __name__ == "__main__":
    main()
