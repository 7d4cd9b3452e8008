"""CPU per log line of a hold+pay: the access log's `request` line and the `payment` line.

Run: `.venv/bin/python -m benchmarks.pay_log_cost [--before OLD_TREE] [--rounds 5] [--lines
3000]`. At 64 connections most payments answer in more than `ACCESS_LOG_SLOW_MS` (500 ms), so
each writes its `request` line as well as its `payment` line (docs/benchmarks/floor.md,
payfloor). Each child process imports one source tree, configures logging as the app does (JSON
lines on stderr, here /dev/null) and times `lines` of each kind with `time.process_time`: the
middleware's `_log` and `payments.service.record` (its counters included). Children alternate
between the trees; medians of the rounds are printed in µs per line.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
sys.stderr = open(os.devnull, "w")
from datetime import UTC, datetime
from common.observability import ObservabilityMiddleware, configure_logging
from regional_api.payments.service import PaymentRecord, record
configure_logging("regional_api:eu-west", "INFO")
lines = int(sys.argv[2])
middleware = ObservabilityMiddleware(None, service="regional_api")
scope = {"method": "POST", "path": "/reservations/res-eu-west-k3v9q2m8x7p4/payments"}
route = "/reservations/{reservation_id}/payments"
payment = PaymentRecord(
    id="pay-eu-west-k3v9q2m8x7p4", reservation_id="res-eu-west-k3v9q2m8x7p4", method="card",
    status="completed", amount_minor=1200, currency="EUR", created_at=datetime.now(UTC),
    provider_ref="sim-1", failure_reason=None,
)

def per_line(write):
    started = time.process_time()
    for _ in range(lines):
        write()
    return (time.process_time() - started) / lines * 1e6

per_line(lambda: record(payment))  # warm-up
request = per_line(lambda: middleware._log(scope, route, 201, 612.25, {}))
paid = per_line(lambda: record(payment))
print(json.dumps({"request": request, "payment": paid}))
"""


def child(tree: Path, lines: int) -> dict[str, float]:
    """One child's µs per line of each kind, importing `tree`."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(lines)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    """Alternate the trees' children, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="another source tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=3000)
    args = parser.parse_args()
    trees = {"this tree": ROOT} | ({"before": args.before} if args.before else {})
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for n in range(args.rounds):
        order = list(trees.items()) if n % 2 == 0 else list(trees.items())[::-1]
        for name, tree in order:
            runs[name].append(child(tree, args.lines))
    for name, results in runs.items():
        medians = {kind: statistics.median(r[kind] for r in results) for kind in results[0]}
        shown = ", ".join(f"{kind} line {us:.1f} µs" for kind, us in medians.items())
        print(f"{name}: {shown} (medians of {len(results)} children)")


if __name__ == "__main__":
    main()
