"""The on-sale through its waiting room, on the whole local stack: `make bench` runs it too.

Run: `.venv/bin/python -m benchmarks.onsale_line [--clients 2000] [--variant large] [--write]`.
Starts the stack, measures the sustainable hold+pay rate through the router (64 customers
buying pairs on other shows for 4 s), seeds one 300-seat show, announces its on-sale (waiting
room on, opening 5 s later), and sends the customers through the router
(`benchmarks/suite/line_rush.py`). `--variant large` runs the 20,000-customer variant instead
(`both`: one after the other, on one stack). Prints the figures, the order inversions among
post-opening arrivals (from the database) and the time to sell out against seats / sustainable
rate; with `--write` rewrites `docs/benchmarks/onsale-line.md` (keeping the other variant's
figures from `docs/benchmarks/onsale-line.json`) and its charts.
"""

import argparse
import base64
import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.holds import Load, cpu_seconds, run_load
from benchmarks.suite import (
    line_join,
    line_poll,
    line_room,
    line_timeline,
    loads,
    pg_top,
    router_side,
    system,
)
from benchmarks.suite.line_doc import VARIANTS, chart, section, write_doc
from benchmarks.suite.line_rush import LineRush
from benchmarks.suite.line_split import run_split
from deploy.local.stack import LocalStack

__all__ = ["VARIANTS", "chart", "run", "run_large", "section"]  # make bench's part

OPENS_IN_S = 5.0
# Admissions per second at most, as an admin sets it: the rate the region sells at, measured in
# the same run (`sustainable`), never below `MIN_CEILING`. Above it the opening's batch (a second
# of the ceiling) admitted ~100 more customers than 150 pairs need, whose futile holds went first
# with the buyers' (docs/benchmarks/onsale-line.md, "After the merge of the sixth round"); far below it (100/s, the
# old fixed figure) the 150 purchases alone took 1.5 s, over the 1.5x target.
MIN_CEILING = 50.0
# The routers' gauge: when their last final pass (sold out written to every held watch) ended.
TOLD_AT_GAUGE = "router_watch_final_pass_end_timestamp_seconds"
LARGE = 20_000  # customers of the large variant
LARGE_OPENS_IN_S = 22.0
# Connections the large variant's customers share for their joins and asks (split
# among the generator processes): the edge proxy's bounded pool, whose queue the joins need;
# without it they overflowed the router's region line (docs/benchmarks/onsale-line.md, "Large
# rush"). An admitted customer buys on its own connection (`line_rush._customer`).
LARGE_CONNECTIONS = 1000
# Held watches of the large variant in one process: this machine lets a process open 20,000
# files (router and generator alike), so 10,000 customers far back hold one at a time and the
# rest wait for one (the 2,000 nearest the front have one each: `line_rush.NEAR_FRONT`).
LARGE_WATCH_CONNECTIONS = 10_000
# Generator processes of the large variant (`--processes N`, N > 1: 20,000 / N customers each,
# every one holding its watches on a connection of its own, the other requests through its
# process's share of LARGE_CONNECTIONS: `line_split`). 1 runs the shared watch pools.
LARGE_PROCESSES = 2
# Router instances of the large variant's stack (`--routers N`): generator process k sends to
# router k mod N, as a load balancer with affinity would (`line_split.routed`). Two, each
# holding ~10,000 watches, stay under the 20,000 files a process may open here; one router
# with a watch per customer went over it, and shared watch pools told the last customer 11-17 s
# after the last sale against 3.2-4.2 s (docs/benchmarks/onsale-line.md, "Twelfth round").
LARGE_ROUTERS = 2
SUSTAINED_S = 4.0  # the sustainable-rate run: this long, this many customers buying at once
SUSTAINED_CLIENTS = 64

# Concurrent joins are ordered where the line numbers them (its sequence's `nextval` in
# join_line, migration 0010): that order is the rank, so an inversion is a later-ranked customer
# admitted first.
INVERSIONS = """
WITH late AS (
  SELECT e.rank, e.admitted_at FROM line_entries e JOIN onsales o USING (show_id)
  WHERE e.show_id = %s AND e.joined_at >= o.opens_at AND e.admitted_at IS NOT NULL)
SELECT count(*) FROM late a JOIN late b ON a.rank < b.rank AND a.admitted_at > b.admitted_at
"""


def announce(stack: LocalStack, show_id: str, opens_at: float, ceiling: float) -> None:
    """The show's on-sale, as an admin's `PUT /shows/{id}/onsale` records it."""
    with psycopg.connect(stack.dsns[loads.REGION], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO onsales (show_id, opens_at, waiting_room, max_admit_per_second,"
            " created_at) VALUES (%s, %s, true, %s, now())",
            (show_id, datetime.fromtimestamp(opens_at, UTC), ceiling),
        )


def inversions(stack: LocalStack, show_id: str) -> int:
    """Pairs of post-opening arrivals admitted in the other order than they came."""
    with psycopg.connect(stack.dsns[loads.REGION]) as conn:
        row = conn.execute(INVERSIONS, (show_id,)).fetchone()
    return int(row[0]) if row else -1


def sustainable(stack: LocalStack, pool: ProcessPoolExecutor, tokens: list[str]) -> dict[str, Any]:
    """Holds+pays per second the region sustains through the router, on shows with no line."""
    hall = loads.fresh_hall(stack, "spread")
    clients = tokens[:SUSTAINED_CLIENTS]
    # Keyed, as the rush's customers (and the web client) hold and pay: the same path.
    load = Load("hold_pay_keyed", stack.router_url, SUSTAINED_S, len(clients), clients, hall)
    outcome = pool.submit(run_load, load).result()
    return {
        "purchases_per_s": round(outcome.rate, 1),  # each a hold of two seats and its payment
        "seats_per_s": round(2 * outcome.rate, 1),
        "p99_ms": round(outcome.percentile(0.99), 1),
        "clients": len(clients),
        "errors": outcome.errors,
    }


def cpu(stack: LocalStack) -> dict[str, float]:
    """CPU seconds used so far by the router, each replica of the region and its PostgreSQL."""
    used = {}
    for name, pids in loads.cpu_probes(stack).items():
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError, IndexError):  # a backend that just exited
                total += cpu_seconds(pid)
        used[name] = total
    return used


def polls_answered(stack: LocalStack) -> dict[str, float]:
    """Line polls the region's replicas answered so far, by what answered them."""
    answered: dict[str, float] = {}
    for _, sample in system.metric_samples(stack.regional_urls(loads.REGION)):
        if sample.name == "onsale_line_polls_total":
            by = sample.labels["answered"]
            answered[by] = answered.get(by, 0.0) + sample.value
    return answered


def routers_told(stack: LocalStack, opens_at: float, last_sale_s: float | None) -> float | None:
    """Seconds from the last sale to the end of the routers' last final pass, when every watch
    they held had been written sold out (the stack's side of "told"; None: no pass since the
    opening)."""
    ends = [
        sample.value
        for _, sample in system.metric_samples(stack.router_urls)
        if sample.name == TOLD_AT_GAUGE and sample.value > opens_at
    ]
    if not ends or last_sale_s is None:
        return None
    return round(max(ends) - opens_at - last_sale_s, 3)


def metric_urls(stack: LocalStack) -> dict[str, str]:
    """The routers and the region's replicas, whose `/metrics` the timeline reads."""
    replicas = stack.regional_urls(loads.REGION)
    routers = {f"router {n}": url for n, url in enumerate(stack.router_urls, 1)}
    return routers | {f"replica {i}": url for i, url in enumerate(replicas)}


def user_of(token: str) -> str:
    """The customer a token is for (its `sub`), read without checking the signature."""
    claims = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"])


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What each counter grew by."""
    return {name: round(after[name] - before.get(name, 0.0), 1) for name in sorted(after)}


def run(
    stack: LocalStack,
    pool: ProcessPoolExecutor,
    tokens: list[str],
    *,
    opens_in: float = OPENS_IN_S,
    early_spread: float = 0.0,
    late_spread: float = 2.0,
    connections: int = 0,
    watch_connections: int = 0,
    patience: float = 180.0,
    processes: int = 1,
    pg_stats: bool = False,
    raw: bool = False,
    ceiling: float | None = None,
) -> dict[str, Any]:
    """One rush through the waiting room of a fresh 300-seat show (also used by `make bench`)."""
    rate = sustainable(stack, pool, tokens)
    hall = system.seed(stack, loads.REGION, rows=15, cols=20, shows=1)
    opens_at = time.time() + opens_in
    if ceiling is None:  # as an admin would set it: the rate measured just now
        ceiling = max(MIN_CEILING, round(rate["purchases_per_s"]))
    announce(stack, hall.show_ids[0], opens_at, ceiling)
    time.sleep(1.5)  # every replica refreshes its set of waiting rooms every 0.5 s
    rush = LineRush(
        stack.router_url,
        tokens,
        hall,
        opens_at,
        late_spread_s=late_spread,
        early_spread_s=early_spread,
        connections=connections,
        watch_connections=watch_connections,
        patience_s=patience,
        processes=processes,
        routers=tuple(stack.router_urls) if len(stack.router_urls) > 1 else (),
    )
    dsn = stack.dsns[loads.REGION]
    pg_stats = pg_stats and pg_top.reset(dsn)
    cpu_before, polls_before, load_before = cpu(stack), polls_answered(stack), os.getloadavg()[0]
    metrics_before = line_timeline.scrape(metric_urls(stack))
    sampler = line_room.RoomSampler(dsn, hall.show_ids[0], opens_at)
    router_pids = system.router_pids(stack)
    logs = [stack.paths.logs / f"{name}.log" for name in router_pids]
    log_from = {log: router_side.log_offset(log) for log in logs}
    files = system.OpenFilesSampler(router_pids).start()
    sampler.start()
    result = pool.submit(run_split, rush).result()
    samples = sampler.stop()
    result["open_files_max"] = files.stop() | {
        "generator": result.pop("generator_open_files_max_by_process")
    }
    result["waits"] = line_timeline.waits(metrics_before, line_timeline.scrape(metric_urls(stack)))
    paths = {user_of(tokens[int(i)]): path for i, path in result.pop("paths").items()}
    writes = [(*w[:2], w[2] - opens_at, *w[3:]) for w in result.pop("writes")]
    result["timeline"] = line_timeline.timeline(dsn, hall.show_ids[0], opens_at, paths)
    found = line_timeline.events(dsn, hall.show_ids[0], opens_at)
    last_sale = result["timeline"]["last_sale_s"]
    result["room_end_game"] = line_room.end_game(samples, sampler.admitted, found, paths, last_sale)
    if raw:  # every reading and customer, for `--raw`
        result["room"] = {
            "samples": samples,
            "paths": paths,
            "admitted": sampler.admitted,
            "writes": writes,
        }
    result["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    result["cpu_s"] = spent(cpu_before, cpu(stack)) | {"generator": result.pop("generator_cpu_s")}
    result["polls_answered"] = spent(polls_before, polls_answered(stack))
    result["inversions_after_opening"] = inversions(stack, hall.show_ids[0])
    result["routers_told_after_last_sale_s"] = routers_told(stack, opens_at, last_sale)
    time.sleep(0.5)  # the router writes its access log in batches, every 0.25 s at the latest
    result["router_side"] = router_side.admitted_requests(log_from, hall.show_ids[0])
    if pg_stats:
        result["postgres"] = pg_top.top(dsn)
    result["sustainable"] = rate
    result["admission_ceiling"] = ceiling
    sold_out = result.get("time_to_sell_out_s")
    if sold_out and rate["seats_per_s"] > 0:
        ideal = result["capacity"] / rate["seats_per_s"]
        result["ideal_sell_out_s"] = round(ideal, 2)
        result["sell_out_ratio"] = round(sold_out / ideal, 2)
        # No rush beats the ideal plus one customer's own path (draw, ask, hold, pay): the first
        # sale's time from the opening is that path, measured.
        first_sale = result["timeline"]["first_sale_s"]
        if first_sale is not None:
            result["bound_s"] = round(ideal + first_sale, 2)
            result["sell_out_over_bound"] = round(sold_out / (ideal + first_sale), 2)
    return result


def run_large(
    stack: LocalStack,
    pool: ProcessPoolExecutor,
    *,
    processes: int = LARGE_PROCESSES,
    pg_stats: bool = False,
) -> dict[str, Any]:
    """The 20,000-customer variant, arrivals spread over 20 s before and 10 s after the opening."""
    tokens = system.tokens(stack, LARGE, "line-large")
    result = run(
        stack,
        pool,
        tokens,
        opens_in=LARGE_OPENS_IN_S,
        early_spread=20,
        late_spread=10,
        connections=LARGE_CONNECTIONS,
        watch_connections=LARGE_WATCH_CONNECTIONS if processes == 1 else 0,
        patience=120,
        processes=processes,
        pg_stats=pg_stats,
    )
    arrivals = "half over the 20 s before the opening, half over the 10 s after"
    pooled = (
        f"joining and asking through {LARGE_CONNECTIONS:,} shared connections to the router (as"
        " behind an edge proxy's bounded pool), buying on a connection of their own once admitted"
    )
    own = (
        f", every customer's watches on a connection of its own (as a browser tab), from"
        f" {processes} generator processes of {LARGE_CONNECTIONS // processes:,} shared"
        " connections each (a process may open 20,000 files)"
    )
    shared = (
        f", the held watches of customers far back through {LARGE_WATCH_CONNECTIONS:,} more,"
        " those near the front through 2,000 (a process may open 20,000 files)"
    )
    how = pooled + (own if processes > 1 else shared)
    if processes > 1 and len(stack.router_urls) > 1:
        how += (
            f"; {len(stack.router_urls)} router instances, generator process k sending all of its"
            " customers' requests to router k (a load balancer with affinity)"
        )
    return result | {"arrivals": f"{arrivals}, {how}; a customer gives up 120 s after it"}


def main() -> None:
    """Start the stack, run the rush (or the large variant), print (and write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument(
        "--variant",
        choices=("standard", "large", "both"),
        default="standard",
        help=f"standard: --clients customers; large: {LARGE:,} customers, arrivals spread",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=LARGE_PROCESSES,
        help="generator processes of the large variant (1: one, its watches through shared pools)",
    )
    parser.add_argument(
        "--routers",
        type=int,
        default=LARGE_ROUTERS,
        help="router instances on the stack of the large variant (process k to router k mod N)",
    )
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="load pg_stat_statements; report the region's top statements during the rush",
    )
    parser.add_argument(
        "--ceiling",
        type=float,
        help="admissions per second at most (default: the sustainable rate measured in the run);"
        " a fixed one takes that measurement's noise out of an A/B on a loaded machine",
    )
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--raw", type=Path, help="also write every figure, series included, here")
    parser.add_argument(
        "--poll-cost", action="store_true", help="only the CPU of one poll, in process (us)"
    )
    parser.add_argument(
        "--join-cost", action="store_true", help="only the CPU of one join, on the stack (us)"
    )
    args = parser.parse_args()
    if args.poll_cost:
        logging.disable(logging.INFO)  # the endpoint's access log would flood the terminal
        print(json.dumps({"cpu_us_per_poll": line_poll.cost()}))
        return
    routers = 1 if args.variant == "standard" else args.routers
    stack = system.start_stack(
        progress=lambda _: None, statement_stats=args.pg_stats, routers=routers
    )
    results: dict[str, dict[str, Any]] = {}
    try:
        if args.join_cost:
            print(json.dumps(line_join.cost(stack), indent=2))
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            if args.variant != "large":
                tokens = system.tokens(stack, args.clients, "line")
                results["onsale_line"] = run(
                    stack,
                    pool,
                    tokens,
                    pg_stats=args.pg_stats,
                    raw=args.raw is not None,
                    ceiling=args.ceiling,
                )
            if args.variant != "standard":
                results["onsale_line_large"] = run_large(
                    stack, pool, processes=args.processes, pg_stats=args.pg_stats
                )
    finally:
        stack.stop()
        shutil.rmtree(stack.paths.root, ignore_errors=True)
    if args.raw:
        args.raw.write_text(json.dumps(results, indent=1))
    for result in results.values():
        print(
            json.dumps({k: v for k, v in result.items() if k not in ("series", "room")}, indent=2)
        )
    if args.write:
        command = f".venv/bin/python -m benchmarks.onsale_line --variant {args.variant}"
        write_doc(results, command)


if __name__ == "__main__":
    main()
