"""A payment's app CPU by stage, regional_api against the floor, from py-spy stacks.

Run: `.venv/bin/python -m benchmarks.pay_stages APP.txt FLOOR.txt APP_US FLOOR_US [OTHER.txt
OTHER_US]`: collapsed stacks of `benchmarks.pay_cpu --profile` (one child's payments each) and
each version's CPU per payment in µs measured by `pay_cpu` in the same run. The event loop's
idle wait (`select`) is left out (the payments run one after the other, so most samples are the
database's turn); each other stack goes to the first stage whose frames it contains, and the
stages' shares of those samples are scaled to the measured CPU. Stacks sampled `BLOB` times or
more are left out, as in `benchmarks/hold_stages.py`.
"""

import argparse
from pathlib import Path

from benchmarks import hold_stages
from benchmarks.hold_stages import Rule, _any

IDLE = "EpollSelector.select"

STAGES: list[tuple[str, Rule]] = [
    (
        "background loops (waiting rooms, admitter, sweeper, reconciler)",
        _any(
            "Admitter.run_forever",
            "refresh_forever (regional_api",
            "regional_api/reservations/sweeper.py",
            "regional_api/payments/reconcile.py",
        ),
    ),
    (
        "pool checkout and return",
        _any(
            "AsyncConnectionPool.connection",
            "HotPool.getconn",
            "HotPool.putconn",
            "AsyncConnectionPool.getconn",
            "AsyncConnectionPool.putconn",
        ),
    ),
    ("the open statement (psycopg: parameters, send, rows)", _any("fetch_one (common/db.py")),
    ("the settle statement (psycopg: parameters, send, rows)", _any("fetch (common/db.py")),
    (
        "the provider call and its timeout",
        _any("charge_with_timeout", "SimulatedProvider.charge"),
    ),
    ("lending the admission slot (`stepped_aside`)", _any("stepped_aside")),
    ("metrics and the payment's log line (`record`)", _any("record (regional_api/payments")),
    (
        "the answer: built and serialised",
        _any("attempt_answer", "respond (regional_api", "JSONResponse", "_json (benchmarks"),
    ),
    (
        "checks and context: token, key, card, payment id",
        _any(
            "payment_context",
            "hold_context (regional_api",
            "check_card",
            "Floor.claims",
            "new_id",
            "is_local",
        ),
    ),
    (
        "reading and validating the body",
        _any(
            "Request.body",
            "Request.json",
            "request_body_to_args",
            "ModelField.validate",
            "_valid_body (common",
            "_read_body (common",
        ),
    ),
    ("FastAPI dependency resolution", _any("solve_dependencies")),
    (
        "endpoint Python: parameters, ticket codes, the rest",
        # FastAPI's call of the endpoint, or the lean handlers' (common/routing.py `lean`)
        _any("run_endpoint_function", "lean_payment.<locals>", "lean_hold.<locals>"),
    ),
    ("sending the response", _any("Response.__call__")),
    ("routing: route match, handler call", _any("Router.__call__", "APIRouter.app")),
    (
        "our middleware: line polls, observability, admission, cached reads",
        _any("ObservabilityMiddleware", "AdmissionControl", "LinePolls", "CachedReads"),
    ),
    (
        "Starlette/FastAPI middleware stack",
        _any("Starlette.__call__", "FastAPI.__call__", "ExceptionMiddleware"),
    ),
    ("event loop, other", lambda s: True),
]


def stages(path: Path) -> dict[str, float]:
    """Each stage's share of the busy samples kept (0-1)."""
    return hold_stages.stages(path, STAGES, IDLE)


def main() -> None:
    """Print the stage table in µs per payment."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", type=Path)
    parser.add_argument("floor", type=Path)
    parser.add_argument("app_us", type=float)
    parser.add_argument("floor_us", type=float)
    parser.add_argument("other", type=Path, nargs="?", help="e.g. main's tree")
    parser.add_argument("other_us", type=float, nargs="?")
    args = parser.parse_args()
    columns = [(stages(args.app), args.app_us), (stages(args.floor), args.floor_us)]
    names = ["regional_api", "floor"]
    if args.other is not None:
        columns.insert(0, (stages(args.other), args.other_us))
        names.insert(0, args.other.stem)
    print(f"| stage (µs of app CPU per payment) | {' | '.join(names)} | regional_api - floor |")
    print("|---|" + "---:|" * (len(columns) + 1))
    for name, _ in STAGES:
        cells = [share[name] * total for share, total in columns]
        figures = " | ".join(f"{cell:.0f}" for cell in cells)
        print(f"| {name} | {figures} | {cells[-2] - cells[-1]:+.0f} |")
    totals = " | ".join(f"{total:.0f}" for _, total in columns)
    print(f"| all | {totals} | {columns[-2][1] - columns[-1][1]:+.0f} |")


if __name__ == "__main__":
    main()
