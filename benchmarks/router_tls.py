"""The router's fast path with TLS to the upstream on and off: the same echo app, both ways.

One router, two copies of the echo upstream: one plain (us-east), one serving HTTPS with a
throwaway CA's certificate (eu-west). The client always speaks plain HTTP to the router, so the
two routed targets differ only in the router-to-upstream hop. The upstream asks for no client
certificate here (wrk, the `direct` reference, cannot present one); the router is configured
with one all the same, as in the TLS tests, and on kept-alive connections mutual TLS costs
nothing more per request.

Run: `.venv/bin/python -m benchmarks.router_tls --seconds 6 [--write]` (about 50 s); `--write`
replaces the TLS figures in docs/benchmarks/router.md.
"""

import argparse
import dataclasses
import json
import os
import re
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.router import DOC, Paired, Result, measure, paired, paired_table, table
from harness.pg import free_port
from harness.procs import Proc, directory_map, metric, router, upstream
from harness.tls import make_throwaway_ca

ROUNDS = 3  # windows per target: three targets at two loads stay within a minute


def run(seconds: int, paired_rounds: int) -> tuple[list[Result], list[Paired], dict[str, float]]:
    """Start the upstreams and the router, measure, and read the fast path's counters."""
    with tempfile.TemporaryDirectory() as tmp:
        files = make_throwaway_ca(Path(tmp) / "tls")
        plain = upstream("plain", "us-east", Path(tmp) / "writes.log")
        secure = upstream("tls", "eu-west", Path(tmp) / "writes.log")
        secure.tls = dataclasses.replace(files, require_client_cert=False)
        static = Path(tmp) / "map.json"
        regions = {"eu-west": [secure.url], "us-east": [plain.url]}
        static.write_text(json.dumps(directory_map("bench", regions, {})))
        tls_env = {k.removeprefix("ROUTER_").lower(): v for k, v in files.router_env().items()}
        proxy = router(
            f"http://127.0.0.1:{free_port()}",  # no directory: the static map is used
            static_config_file=static,
            rate_limit_enabled="false",
            probe_interval_seconds=1,
            map_refresh_seconds=3600,
            **tls_env,
        )
        started: list[Proc] = []
        try:
            started += [plain.start(), secure.start(), proxy.start()]
            assert proxy.proc is not None
            targets: dict[str, tuple[str, int | None]] = {
                "direct": (plain.url + "/echo", None),
                "router→http": (proxy.url + "/regions/us-east/echo", proxy.proc.pid),
                "router→https": (proxy.url + "/regions/eu-west/echo", proxy.proc.pid),
            }
            results = measure("echo", targets, seconds, rounds=ROUNDS)
            alternated = paired("echo", {k: url for k, (url, _) in targets.items()}, paired_rounds)
            with httpx.Client(base_url=proxy.url) as client:
                fast = {
                    result: metric(client, "router_fast_path_requests_total", result=result)
                    for result in ("answered", "resumed")
                }
            return results, alternated, fast
        finally:
            for proc in started:
                proc.kill()


def main() -> None:
    """Measure, print, and with `--write` replace the TLS figures in the benchmark document."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1000, help="alternated single GETs")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    results, alternated, fast = run(args.seconds, args.rounds)
    figures = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.seconds} s per "
        f"load ({ROUNDS} windows per target), {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} after the run. Fast path over the run: "
        f"{fast['answered']:.0f} GETs answered, {fast['resumed']:.0f} resumed on the ASGI path.\n\n"
        f"{table(results)}\n\nOne connection, single GETs alternated ({args.rounds} rounds):\n\n"
        f"{paired_table(alternated)}"
    )
    print(figures)
    if args.write:
        text = DOC.read_text()
        block = f"<!-- tls-figures -->\n{figures}\n<!-- /tls-figures -->"
        DOC.write_text(
            re.sub(
                r"<!-- tls-figures -->.*<!-- /tls-figures -->", lambda _: block, text, flags=re.S
            )
        )


if __name__ == "__main__":
    main()
