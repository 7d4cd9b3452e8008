"""Soak mode (not run by CI): the reliability suite in rounds, scaled up, for N minutes.

    python -m tests.reliability.soak --minutes 10 [--customers 5000] [--fault-seconds 30]

Each round runs `pytest tests/reliability` with the sizes raised through `RELIABILITY_*`
variables and writes its table to `test-artifacts/soak/round-<n>.json`.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.report import ROOT


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="stop starting rounds after")
    parser.add_argument("--customers", type=int, default=5000, help="storm customers")
    parser.add_argument("--connections", type=int, default=64, help="storm connections")
    parser.add_argument("--fault-seconds", type=int, default=30, help="how long each fault lasts")
    parser.add_argument("--fault-workers", type=int, default=12, help="background bookers")
    parser.add_argument("--fuzz-examples", type=int, default=60, help="examples per operation")
    parser.add_argument("-k", default="", help="pytest -k expression (e.g. 'storm or faults')")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run rounds until the time is up; return non-zero if any round failed."""
    args = _arguments(argv)
    out = ROOT / "test-artifacts" / "soak"
    out.mkdir(parents=True, exist_ok=True)
    sizes = {
        "RELIABILITY_STORM_CUSTOMERS": args.customers,
        "RELIABILITY_STORM_CONNECTIONS": args.connections,
        "RELIABILITY_FAULT_SECONDS": args.fault_seconds,
        "RELIABILITY_FAULT_WORKERS": args.fault_workers,
        "RELIABILITY_FUZZ_EXAMPLES": args.fuzz_examples,
    }
    deadline = time.monotonic() + args.minutes * 60
    failed, round_no = 0, 0
    while time.monotonic() < deadline:
        round_no += 1
        artifact = Path(out / f"round-{round_no}.json")
        env = os.environ | {k: str(v) for k, v in sizes.items()}
        env["RELIABILITY_ARTIFACT"] = str(artifact)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-o", "timeout=0", str(ROOT / "tests" / "reliability")]
        command += ["-k", args.k] if args.k else []
        print(f"soak round {round_no}: {' '.join(command)}", flush=True)
        code = subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
        failed += code != 0
        print(f"soak round {round_no}: exit {code}, table {artifact}", flush=True)
    print(f"soak: {round_no} rounds, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
