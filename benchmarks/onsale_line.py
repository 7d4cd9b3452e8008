"""The on-sale through its waiting room, on the whole local stack: `make bench` runs it too.

Run: `.venv/bin/python -m benchmarks.onsale_line [--clients 2000] [--large] [--write]`. Starts
the stack, measures the sustainable hold+pay rate through the router (64 customers buying pairs
on other shows for 4 s), seeds one 300-seat show, announces its on-sale (waiting room on,
opening 5 s later), and sends the customers through the router
(`benchmarks/suite/line_rush.py`). `--large` then runs the 20,000-customer variant on the same
stack. Prints the figures, the order inversions among post-opening arrivals (from the
database) and the time to sell out against seats / sustainable rate; with `--write` rewrites
`docs/benchmarks/onsale-line.md` and its chart.
"""

import argparse
import contextlib
import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.holds import Load, cpu_seconds, run_load
from benchmarks.suite import loads, system
from benchmarks.suite.line_rush import LineRush, run_line_rush
from deploy.local.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "onsale-line.md"
OPENS_IN_S = 5.0
CEILING = 100.0  # admissions per second at most
LARGE = 20_000  # customers of the large variant
SUSTAINED_S = 4.0  # the sustainable-rate run: this long, this many customers buying at once
SUSTAINED_CLIENTS = 64

# Concurrent joins are ordered where the line serializes them (the on-sale's row lock in
# join_line): that order is the rank, so an inversion is a later-ranked customer admitted first.
INVERSIONS = """
WITH late AS (
  SELECT e.rank, e.admitted_at FROM line_entries e JOIN onsales o USING (show_id)
  WHERE e.show_id = %s AND e.joined_at >= o.opens_at AND e.admitted_at IS NOT NULL)
SELECT count(*) FROM late a JOIN late b ON a.rank < b.rank AND a.admitted_at > b.admitted_at
"""


def announce(stack: LocalStack, show_id: str, opens_at: float) -> None:
    """The show's on-sale, as an admin's `PUT /shows/{id}/onsale` records it."""
    with psycopg.connect(stack.dsns[loads.REGION], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO onsales (show_id, opens_at, waiting_room, max_admit_per_second,"
            " created_at) VALUES (%s, %s, true, %s, now())",
            (show_id, datetime.fromtimestamp(opens_at, UTC), CEILING),
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
    load = Load("hold_pay", stack.router_url, SUSTAINED_S, len(clients), clients, hall)
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
    for base in stack.regional_urls(loads.REGION):
        text = httpx.get(f"{base}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "onsale_line_polls_total":
                    by = sample.labels["answered"]
                    answered[by] = answered.get(by, 0.0) + sample.value
    return answered


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What each counter grew by."""
    return {name: round(after[name] - before.get(name, 0.0), 1) for name in sorted(after)}


def run(stack: LocalStack, pool: ProcessPoolExecutor, tokens: list[str]) -> dict[str, Any]:
    """One rush through the waiting room of a fresh 300-seat show (also used by `make bench`)."""
    rate = sustainable(stack, pool, tokens)
    hall = system.seed(stack, loads.REGION, rows=15, cols=20, shows=1)
    opens_at = time.time() + OPENS_IN_S
    announce(stack, hall.show_ids[0], opens_at)
    time.sleep(1.5)  # every replica refreshes its set of waiting rooms every 0.5 s
    rush = LineRush(stack.router_url, tokens, hall, opens_at)
    cpu_before, polls_before = cpu(stack), polls_answered(stack)
    result = pool.submit(run_line_rush, rush).result()
    result["cpu_s"] = spent(cpu_before, cpu(stack)) | {"generator": result.pop("generator_cpu_s")}
    result["polls_answered"] = spent(polls_before, polls_answered(stack))
    result["inversions_after_opening"] = inversions(stack, hall.show_ids[0])
    result["sustainable"] = rate
    sold_out = result.get("time_to_sell_out_s")
    if sold_out and rate["seats_per_s"] > 0:
        ideal = result["capacity"] / rate["seats_per_s"]
        result["ideal_sell_out_s"] = round(ideal, 2)
        result["sell_out_ratio"] = round(sold_out / ideal, 2)
    return result


def run_large(stack: LocalStack, pool: ProcessPoolExecutor) -> dict[str, Any]:
    """The 20,000-customer variant (tokens of its own)."""
    return run(stack, pool, system.tokens(stack, LARGE, "line-large"))


def chart(result: dict[str, Any], path: Path) -> None:
    """The line's length and the admissions per second over the rush."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = result["series"]
    t = [s["t"] for s in series]
    fig, left = plt.subplots(figsize=(8, 3.5))
    left.plot(t, [s["line_length"] for s in series], label="waiting in line")
    left.plot(t, [s["sold"] for s in series], label="seats sold")
    left.set_xlabel("seconds after the opening")
    right = left.twinx()
    right.plot(t, [s["admit_rate"] for s in series], color="tab:red", label="admitted per second")
    left.legend(loc="upper left")
    right.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def section(result: dict[str, Any], chart_file: str = "onsale-line.png") -> list[str]:
    """The rush through the waiting room as Markdown (the doc and `make bench`'s report)."""
    figures = result.get("onsale_line")
    if not figures:
        return []
    shown = {key: value for key, value in figures.items() if key != "series"}
    return [
        "## The on-sale through its waiting room",
        "",
        f"{figures['clients']} customers for a {figures['capacity']}-seat show; half arrive before"
        " the opening, half over the 2 s after it; all go through the router. Targets (issue 17):"
        " no customer sees a 5xx or 503; every customer gets an outcome; the last one is told"
        " sold out within 2 s of the last sale; p99 of an admitted customer's requests < 250 ms;"
        " 0 order inversions after the opening.",
        "",
        f"![line length, sales and admissions per second]({chart_file})",
        "",
        "```json",
        json.dumps(shown, indent=2, sort_keys=True),
        "```",
        "",
        "Reading:",
        "",
        f"- Waiting, not refused: {shown['customers_with_5xx']} customers saw a 5xx or a 503"
        f" (before the waiting room: 4,940 of 8,971 answers were 503); every customer ended"
        f" with an outcome ({shown['outcomes']}); {shown['inversions_after_opening']}"
        " admissions out of the line's order after the opening.",
        f"- The line's polls are the load: {shown['polls']} `GET /shows/{{id}}/line` in the"
        " rush, each a full request through the router and a replica, on the same 2 cores as"
        " the generator. Admitted customers' holds go ahead of them (`common/priority.py`); the"
        f" p99 of their holds was {shown['admitted_holds']['p99_ms']} ms and of their payments"
        f" {shown['admitted_payments']['p99_ms']} ms (300 ms of it the simulated provider). The"
        f" last customer was told sold out {shown['last_told_after_last_sale_s']} s after the"
        " last sale: clients far back poll every 3 s at most.",
        "- Next: answer the line's polls without the replica's request pipeline (a signed line"
        " ticket checked against per-replica counters refreshed every 0.5 s), and the"
        " 20,000-customer variant.",
        "",
    ]


def write_doc(results: dict[str, dict[str, Any]], command: str) -> None:
    """docs/benchmarks/onsale-line.md and its chart(s)."""
    chart(results["onsale_line"], DOC.with_suffix(".png"))
    if "onsale_line_large" in results:
        chart(results["onsale_line_large"], DOC.with_name("onsale-line-large.png"))
    lines = [
        "# The on-sale through its waiting room",
        "",
        f"`{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (2 cores, shared).",
        "",
        *section(results)[2:],
    ]
    DOC.write_text("\n".join(lines))


def main() -> None:
    """Start the stack, run the rush (and the large variant), print (and write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--large", action="store_true", help=f"also {LARGE:,} customers")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--raw", type=Path, help="also write every figure, series included, here")
    args = parser.parse_args()
    stack = system.start_stack(progress=lambda _: None)
    results: dict[str, dict[str, Any]] = {}
    try:
        tokens = system.tokens(stack, args.clients, "line")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            results["onsale_line"] = run(stack, pool, tokens)
            if args.large:
                results["onsale_line_large"] = run_large(stack, pool)
    finally:
        stack.stop()
        shutil.rmtree(stack.paths.root, ignore_errors=True)
    if args.raw:
        args.raw.write_text(json.dumps(results, indent=1))
    for result in results.values():
        print(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=2))
    if args.write:
        large = " --large" if args.large else ""
        command = f".venv/bin/python -m benchmarks.onsale_line --clients {args.clients}{large}"
        write_doc(results, command)


if __name__ == "__main__":
    main()
