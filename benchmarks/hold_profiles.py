"""py-spy on regional_api (and a `--before` tree) and on the floor, under the same hold load.

Run: `.venv/bin/python -m benchmarks.hold_profiles OUT [--seconds 8] [--before OLD_TREE] [--op
"hold+pay"] [--path router]` (an operation of `benchmarks.floor_bench`; default one-seat holds,
direct; `--path router` loads each app through its router instead).
Starts the floor benchmark's system (`benchmarks.floor_bench.system`, direct only), warms every
app up, then for each app in turn: 8 s of one-seat holds at 64 connections with py-spy
recording it (collapsed stacks, `OUT/<app>.txt`) and the app's CPU per hold from /proc, printed.
`benchmarks/hold_stages.py` turns two of the files into the stage table of docs/benchmarks/floor.md.
"""

import argparse
import multiprocessing
import tempfile
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

from benchmarks import floor_bench
from benchmarks.floor_probes import cpu
from benchmarks.holds import Load, run_load
from benchmarks.suite import profile


def profile_all(
    pool: Executor,
    rig: floor_bench.Rig,
    seconds: float,
    out: Path,
    op: str = "hold 1 seat",
    path: str = "direct",
) -> None:
    """Warm every app up, then profile each during `seconds` of `op` (one-seat holds) on `path`."""
    hall = floor_bench._hall(rig, "hold+pay")
    targets = [target for target in rig.targets if target.path == path]
    for target in targets:
        for scenario, length in (("hold_pay", 1.0), ("seats", 0.5)):
            pool.submit(run_load, Load(scenario, target.url, length, 64, rig.tokens, hall)).result()
    for target in targets:
        name = target.app.replace(" (before)", "_before")
        spy = profile.start(target.app_pid, seconds, out / f"{name}.txt", "raw")
        hall = floor_bench._hall(rig, op)
        started = cpu(target.app_pid, target.router_pid)
        scenario = floor_bench.SCENARIO[op]
        outcome = pool.submit(
            run_load, Load(scenario, target.url, seconds, 64, rig.tokens, hall)
        ).result()
        ops = max(1, outcome.ok + outcome.conflicts + outcome.errors)
        used = cpu(target.app_pid, target.router_pid)
        spent = {part: (used[part] - started[part]) * 1000 / ops for part in used}
        router = f", router {spent['router']:.3f} ms/op" if "router" in spent else ""
        print(
            f"{target.app} ({path}): {op}: {outcome.ok} ok, {outcome.conflicts} 409,"
            f" app {spent['app']:.3f} ms/op{router}"
        )
        if spy is not None:
            spy.wait(timeout=60)


def main() -> None:
    """Parse the options, start the system, profile."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--before", type=Path, help="also regional_api from this source tree")
    parser.add_argument("--op", default="hold 1 seat", choices=list(floor_bench.SCENARIO))
    parser.add_argument(
        "--path", choices=("direct", "router"), default="direct", help="through the routers?"
    )
    args = parser.parse_args()
    options = floor_bench.Options(
        seconds=args.seconds, routed=args.path == "router", before=args.before, ops=(args.op,)
    )
    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(1, mp_context=context) as pool,
        tempfile.TemporaryDirectory(prefix="bench-hold-profiles-") as tmp,
        floor_bench.system(Path(tmp), options) as rig,
    ):
        profile_all(pool, rig, args.seconds, args.out, args.op, args.path)


if __name__ == "__main__":
    main()
