"""The cyclic collector's work per operation in regional_api and the floor, under the same load.

Run: `.venv/bin/python -m benchmarks.floor_gc [--op "hold 2 seats"] [--seconds 4] [--rounds 2]
[--tune-floor]`. Starts the floor benchmark's system (`benchmarks.floor_bench.system`, routed
too) with a `sitecustomize` on every process's path that times each collection with
`gc.callbacks` (thread CPU time) and writes the totals to a file twice a second; then, per round
and target, runs the load and prints the app's CPU and its collections per 100 operations and
µs per operation, by generation. `--tune-floor` gives the floor regional_api's setting
(`regional_api.main.long_lived_heap`: its heap frozen, young collections at 10,000) a few
seconds after it starts, to see what the same setting would save a minimal app.
"""

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import floor_bench
from benchmarks.floor_probes import cpu
from benchmarks.holds import Load, run_load

SITE = """
import gc, json, os, sys, threading, time

_totals = {"0": [0, 0.0], "1": [0, 0.0], "2": [0, 0.0]}
_started = [0.0]


def _timed(phase, info):
    if phase == "start":
        _started[0] = time.thread_time()
    else:
        total = _totals[str(info["generation"])]
        total[0] += 1
        total[1] += time.thread_time() - _started[0]


def _report(out, tune):
    begun = time.monotonic()
    while True:
        time.sleep(0.5)
        if tune and any(tune in arg for arg in sys.argv) and time.monotonic() - begun > 8:
            tune = None
            gc.freeze()
            gc.set_threshold(10_000, *gc.get_threshold()[1:])
        with open(f"{out}/{os.getpid()}.tmp", "w") as handle:
            json.dump(_totals, handle)
        os.replace(f"{out}/{os.getpid()}.tmp", f"{out}/{os.getpid()}.json")


gc.callbacks.append(_timed)
threading.Thread(
    target=_report, args=(os.environ["FLOOR_GC_OUT"], os.environ.get("FLOOR_GC_TUNE")), daemon=True
).start()
"""


def totals(out: Path, pid: int) -> dict[str, list[float]]:
    """The collections of `pid` so far, by generation: [count, CPU seconds]."""
    time.sleep(0.6)  # the next report of the process
    found: dict[str, list[float]] = json.loads((out / f"{pid}.json").read_text())
    return found


def measure(out: Path, options: floor_bench.Options) -> None:
    """Warm up, then each target in turn for each round, printing its collections per op."""
    context = multiprocessing.get_context("spawn")
    op = options.ops[0]
    with (
        ProcessPoolExecutor(1, mp_context=context) as pool,
        tempfile.TemporaryDirectory(prefix="bench-floor-gc-") as tmp,
        floor_bench.system(Path(tmp), options) as rig,
    ):
        hall = floor_bench._hall(rig, "hold+pay")
        for target in rig.targets:
            pool.submit(run_load, Load("hold_pay", target.url, 1.0, 64, rig.tokens, hall)).result()
        for n in range(options.rounds):
            for target in rig.targets if n % 2 == 0 else rig.targets[::-1]:
                load = Load(
                    floor_bench.SCENARIO[op],
                    target.url,
                    options.seconds,
                    options.clients,
                    rig.tokens,
                    floor_bench._hall(rig, op),
                )
                before, used = totals(out, target.app_pid), cpu(target.app_pid, None)["app"]
                outcome = pool.submit(run_load, load).result()
                used = cpu(target.app_pid, None)["app"] - used
                after = totals(out, target.app_pid)
                print(_line(n, target, outcome.ok + outcome.conflicts, used, before, after))


def _line(
    n: int, target: Any, ops: int, used: float, before: dict[str, Any], after: dict[str, Any]
) -> str:
    ops = max(ops, 1)
    parts = [
        f"gen{g}: {100 * (after[g][0] - before[g][0]) / ops:.1f}/100 ops,"
        f" {1e6 * (after[g][1] - before[g][1]) / ops:.1f} µs/op"
        for g in ("0", "1", "2")
    ]
    return (
        f"round {n + 1} {target.app:14} {target.path:6} {ops:5} ops,"
        f" app {1000 * used / ops:.3f} ms/op; " + "; ".join(parts)
    )


def main() -> None:
    """Parse the options, put the collector's timer on every process's path, measure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--op", default="hold 2 seats", choices=list(floor_bench.SCENARIO))
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tune-floor", action="store_true", help="the floor with the setting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="floor-gc-site-") as site:
        (Path(site) / "sitecustomize.py").write_text(SITE)
        out = Path(site) / "totals"
        out.mkdir()
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [site, str(floor_bench.ROOT), os.environ.get("PYTHONPATH", "")]
        )
        os.environ["FLOOR_GC_OUT"] = str(out)
        if args.tune_floor:
            os.environ["FLOOR_GC_TUNE"] = "benchmarks.floor:create_app"
        options = floor_bench.Options(args.seconds, ops=(args.op,), rounds=args.rounds)
        measure(out, options)


if __name__ == "__main__":
    main()
