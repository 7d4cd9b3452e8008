"""CPU per request of the observability middleware: this tree's against another version's.

Run: `.venv/bin/python -m benchmarks.middleware_cost [--before OLD/common/observability.py]
[--rounds 5] [--requests 20000]`. Each measurement is a child process that drives a FastAPI app
shaped like regional_api's (an included router, a path parameter, a small JSON answer) through
ASGI calls, with no network, and reads its own CPU time (`time.process_time`): once bare, once
wrapped by `instrument()`, logging as deployed (INFO, JSON lines to stderr, here /dev/null).
The difference is the middleware's cost. CPU time, not wall time, so a loaded machine blurs it
far less than an HTTP benchmark; children alternate between the versions, medians are reported.
"""

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

PATH = "/shows/show-eu-west-0001/holds"
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": PATH,
    "raw_path": PATH.encode(),
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"t"), (b"content-type", b"application/json")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
}


def _app(module: Any | None, every: int | None = None) -> FastAPI:
    router = APIRouter()

    @router.post("/shows/{show_id}/holds")
    async def hold(show_id: str) -> JSONResponse:
        return JSONResponse({"id": show_id, "status": "held"}, 201)

    app = FastAPI()
    app.include_router(router)
    if module is not None:
        module.configure_logging("bench", "INFO")
        if every is None:
            module.instrument(app, service="bench")
        else:  # this tree's policy, with another sampling rate
            module.instrument(app, service="bench", access_log=module.AccessLog(every))
    return app


async def _drive(app: FastAPI, requests: int) -> float:
    """CPU seconds per request over `requests` ASGI calls (after a warm-up)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    for _ in range(2000):
        await app(dict(SCOPE), receive, send)
    started = time.process_time()
    for _ in range(requests):
        await app(dict(SCOPE), receive, send)
    return (time.process_time() - started) / requests


def child(module_file: str | None, requests: int, every: int | None) -> dict[str, float]:
    """One measurement: µs per request bare and instrumented, with this or another module."""
    if module_file:
        spec = importlib.util.spec_from_file_location("observability_under_test", module_file)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        import common.observability as module
    bare = asyncio.run(_drive(_app(None), requests))
    wrapped = asyncio.run(_drive(_app(module, every), requests))
    return {"bare_us": bare * 1e6, "instrumented_us": wrapped * 1e6}


def measure(version: tuple[str | None, int | None], requests: int) -> dict[str, float]:
    """Run `child` in a fresh process (stderr, where the access log goes, is /dev/null)."""
    module_file, every = version
    command = [sys.executable, "-m", "benchmarks.middleware_cost", "--child", str(requests)]
    command += ["--module", module_file] if module_file else []
    command += ["--every", str(every)] if every is not None else []
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def main() -> None:
    """Alternate the versions' children, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="another version of common/observability.py")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--module", help=argparse.SUPPRESS)
    parser.add_argument("--every", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.module, args.child, args.every)))
        return
    versions: dict[str, tuple[str | None, int | None]] = {
        "this tree (access log: 1 in 100)": (None, None),
        "this tree, every request logged": (None, 1),
    }
    if args.before:
        versions["before"] = (str(args.before), None)
    seen: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    for _ in range(args.rounds):
        for name, version in versions.items():
            seen[name].append(measure(version, args.requests))
    print("| version | bare app µs/request | instrumented µs/request | middleware µs/request |")
    print("|---|---:|---:|---:|")
    for name, runs in seen.items():
        bare = statistics.median(r["bare_us"] for r in runs)
        wrapped = statistics.median(r["instrumented_us"] for r in runs)
        cost = statistics.median(r["instrumented_us"] - r["bare_us"] for r in runs)
        print(f"| {name} | {bare:.1f} | {wrapped:.1f} | {cost:.1f} |")


if __name__ == "__main__":
    main()
