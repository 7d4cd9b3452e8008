"""A hold's app CPU by stage of the request, regional_api against the floor, from py-spy stacks.

Run: `.venv/bin/python -m benchmarks.hold_stages APP.txt FLOOR.txt APP_MS FLOOR_MS`: two
collapsed-stack files of the same hold load (e.g. docs/benchmarks/profiles/lean-holds-*.txt)
and each app's measured CPU per hold in ms. Each stack goes to the first stage whose frames it
contains; the stages' shares of the samples are scaled to µs per hold. A hold served by the
lean handler (`common.routing.lean`) has no FastAPI resolution: its stages are the same ones. A stack sampled
`BLOB` times or more over one 8 s run is left out: on a loaded machine py-spy's non-blocking
mode counts a runnable thread waiting for a core as busy, and such waits pile up on one stack.
"""

import argparse
from collections.abc import Callable
from pathlib import Path

BLOB = 20

Rule = Callable[[str], bool]


def _any(*frames: str) -> Rule:
    return lambda stack: any(frame in stack for frame in frames)


STAGES: list[tuple[str, Rule]] = [
    (
        "the claim statement: psycopg send, wait, rows (`fetch`)",
        lambda s: (
            "fetch (common/db.py" in s
            and ("run_endpoint_function" in s or "HoldContext.answer" in s)
        ),
    ),
    (
        "pool checkout and return",
        _any(
            "AsyncConnectionPool.connection",
            "HotPool.getconn",
            "HotPool.putconn",
            "get_autocommit_conn",
            "AsyncConnectionPool.getconn",
            "AsyncConnectionPool.putconn",
        ),
    ),
    (
        "hold checks: settings, show id, token, admission, key, cap, hint",
        _any("hold_context (regional_api", "Floor.claims"),
    ),
    (
        "reading and validating the body",
        _any(
            "Request.body",
            "Request.json",
            "request_body_to_args",
            "ModelField.validate",
            "_read_body (common/routing.py",
            "_valid_body (common/routing.py",
        ),
    ),
    ("FastAPI dependency resolution", _any("solve_dependencies")),
    (
        "endpoint Python: id, parameters, answer built and serialised",
        _any("run_endpoint_function", "HoldContext.answer"),
    ),
    (
        "sending the response (Starlette Response, uvicorn write)",
        _any("Response.__call__", "RequestResponseCycle.send"),
    ),
    ("routing: route match, handler call", _any("Router.__call__", "APIRouter.app")),
    (
        "our middleware: line polls, observability, admission, cached reads",
        _any("ObservabilityMiddleware", "AdmissionControl", "LinePolls", "CachedReads"),
    ),
    (
        "Starlette/FastAPI middleware stack",
        _any("Starlette.__call__", "FastAPI.__call__", "ProxyHeadersMiddleware"),
    ),
    ("uvicorn: HTTP parsing, ASGI cycle", _any("httptools_impl", "uvicorn/protocols")),
    ("event loop, background tasks, other", lambda s: True),
]


def stages(
    path: Path, table: list[tuple[str, Rule]] = STAGES, idle: str | None = None
) -> dict[str, float]:
    """Each stage's share of the samples kept (0-1); stacks through `idle` are left out."""
    counts = dict.fromkeys((name for name, _ in table), 0)
    kept = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if int(count) >= BLOB or (idle is not None and idle in stack):
            continue
        kept += int(count)
        counts[next(name for name, rule in table if rule(stack))] += int(count)
    return {name: count / max(1, kept) for name, count in counts.items()}


def main() -> None:
    """Print the stage table in µs per hold."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", type=Path)
    parser.add_argument("floor", type=Path)
    parser.add_argument("app_ms", type=float)
    parser.add_argument("floor_ms", type=float)
    args = parser.parse_args()
    app, floor = stages(args.app), stages(args.floor)
    print("| stage | regional_api µs/hold | floor µs/hold | difference |")
    print("|---|---:|---:|---:|")
    for name, _ in STAGES:
        ours, least = app[name] * args.app_ms * 1000, floor[name] * args.floor_ms * 1000
        print(f"| {name} | {ours:.0f} | {least:.0f} | {ours - least:+.0f} |")
    total, least = args.app_ms * 1000, args.floor_ms * 1000
    print(f"| all | {total:.0f} | {least:.0f} | {total - least:+.0f} |")


if __name__ == "__main__":
    main()
