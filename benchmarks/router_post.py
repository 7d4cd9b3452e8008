"""Router CPU per POST (a hold, a payment): this tree's router against another tree's, A/B.

Run: `.venv/bin/python -m benchmarks.router_post --before /tmp/routerpost-before` (about 50 s;
make the tree with `git -C /work/main archive HEAD | tar -x -C /tmp/routerpost-before`). One
echo app (`harness/upstream_app.py`, the cheapest upstream: nothing but the proxy's own cost),
reached directly, through this tree's router and through the other tree's (`UVICORN_APP_DIR`),
side by side with the same settings and static map; without `--before`, the second router is
this tree's on the ASGI path only (`router.proxy.bounds:BoundedProtocol`). Per workload, wrk
at 64 connections in interleaved windows; router CPU per request from /proc
(`benchmarks.router.measure`). Prints the tables for docs/benchmarks/router.md.
"""

import argparse
import json
import tempfile
from pathlib import Path

import httpx

from benchmarks.router import Result, measure, table
from common.ids import new_id
from harness.pg import free_port
from harness.procs import Proc, directory_map, metric, router, upstream

# name -> (path, body, extra headers): what the customer app sends to hold and to pay.
WORKLOADS = {
    "hold": (
        f"/shows/{new_id('show', 'us-east')}/holds",
        '{"seat_ids": ["seat-a1", "seat-a2"]}',
        {},
    ),
    "payment": (
        f"/reservations/{new_id('res', 'us-east')}/payments",
        '{"method": "card"}',
        {"Idempotency-Key": "bench-pay-1"},
    ),
}
ASGI_ONLY = "router.proxy.bounds:BoundedProtocol"
RESULTS = ("answered", "resumed")  # of router_fast_path_requests_total


def _script(directory: Path, name: str) -> Path:
    """A wrk Lua script that POSTs the workload's body with a bearer token."""
    _, body, extra = WORKLOADS[name]
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench", **extra}
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _router(static: Path, *, tree: Path | None, http: str | None) -> Proc:
    proxy = router(
        f"http://127.0.0.1:{free_port()}",  # no directory: the static map is used
        static_config_file=static,
        rate_limit_enabled="false",
        probe_interval_seconds=1,
        map_refresh_seconds=3600,
    )
    if tree is not None:  # uvicorn puts its app dir first on sys.path: that tree's router
        proxy.env["UVICORN_APP_DIR"] = str(tree.resolve())
    if http is not None:
        proxy.http = http
    return proxy


def run(before: Path | None, window: int) -> list[Result]:
    """Start the echo app and both routers; load each workload through each target."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        echo = upstream("bench", "us-east", workdir / "writes.log")
        static = workdir / "map.json"
        static.write_text(json.dumps(directory_map("bench", {"us-east": [echo.url]}, {})))
        other = "router-before" if before else "router-asgi"
        proxies = {
            "router": _router(static, tree=None, http=None),
            other: _router(static, tree=before, http=None if before else ASGI_ONLY),
        }
        started = [echo]
        try:
            echo.start()
            for proxy in proxies.values():
                started.append(proxy.start())
            results = []
            for name, (path, _, _) in WORKLOADS.items():
                targets: dict[str, tuple[str, int | None]] = {"direct": (echo.url + path, None)}
                for target, proxy in proxies.items():
                    assert proxy.proc is not None
                    targets[target] = (proxy.url + path, proxy.proc.pid)
                script = _script(workdir, name)
                results += measure(name, targets, window * 3, rounds=3, loads=(64,), script=script)
            _print_fast_path(proxies["router"].url)
            return results
        finally:
            for proc in started:
                proc.kill()


def _print_fast_path(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        counts = [metric(client, "router_fast_path_requests_total", result=r) for r in RESULTS]
    print(f"  this tree's fast path: {counts[0]:.0f} answered, {counts[1]:.0f} resumed")


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="the other source tree's router (A/B)")
    parser.add_argument("--window", type=int, default=2, help="seconds per wrk window")
    args = parser.parse_args()
    print(table(run(args.before, args.window)))


if __name__ == "__main__":
    main()
