"""`python -m deploy.local up`: the whole system on this machine, demo data loaded, URLs printed."""

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TextIO

from deploy.local.prometheus import PrometheusProcess, scrape_config
from deploy.local.stack import ROOT, DemoMode, LocalStack, StackOptions
from deploy.local.topology import PROMETHEUS_OFFSET, PortInUseError, Ports, check_ports_free


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="cinema", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start every process and wait (Ctrl-C stops all)")
    up.add_argument("--wipe", action="store_true", help="delete the data directory first")
    up.add_argument(
        "--base-port",
        type=int,
        default=8000,
        help="moves every port: router base, global_api base+1, regions base+11.., "
        "PostgreSQL base+40.. (default 8000)",
    )
    up.add_argument(
        "--pg-base-port", type=int, default=None, help="first PostgreSQL port (default base+40)"
    )
    up.add_argument("--data-dir", type=Path, default=ROOT / "var", help="state directory")
    up.add_argument("--no-demo", action="store_true", help="do not load demo data")
    up.add_argument("--small-demo", action="store_true", help="one cinema and hall per region")
    up.add_argument("--no-fsync", action="store_true", help="faster, not crash-safe PostgreSQL")
    up.add_argument("--log-level", default="INFO")
    up.add_argument(
        "--tls",
        action="store_true",
        help="router to regions over HTTPS with mutual TLS (a throwaway CA in DATA_DIR/tls)",
    )
    up.add_argument(
        "--prometheus", action="store_true", help="also run Prometheus (port base+1090) with alerts"
    )
    return parser.parse_args(argv)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def line_printer(stream: TextIO, prefix: str = "[up] ") -> Callable[[str], None]:
    """A progress printer that threads can share: each line is one write, never interleaved."""
    lock = threading.Lock()

    def emit(line: str) -> None:
        # print() writes the text and the newline separately: two threads could interleave them.
        with lock:
            stream.write(f"{prefix}{line}\n")
            stream.flush()

    return emit


def _preflight(args: argparse.Namespace, ports: Ports) -> str | None:
    """What stops `up` before anything starts (a missing program, a taken port), or None."""
    extra = []
    if args.prometheus:
        if shutil.which("prometheus") is None:
            return (
                "--prometheus needs the prometheus program, which is not installed; "
                "install it with `bash deploy/ensure-packages.sh --all` "
                "(or `apt-get install prometheus`), or start without --prometheus"
            )
        extra.append((args.base_port + PROMETHEUS_OFFSET, "prometheus"))
    try:
        check_ports_free(ports, extra)
    except PortInUseError as exc:
        return f"{exc}; free it or choose other ports with --base-port"
    return None


def _print_summary(stack: LocalStack, prometheus: PrometheusProcess | None, seconds: float) -> None:
    print(f"\nThe cinema platform is up (started in {seconds:.0f} s).", flush=True)
    for label, link in stack.urls().items():
        print(f"  {label:<28} {link}")
    if prometheus:
        print(f"  {'prometheus (alerts)':<28} {prometheus.url}/alerts")
    print(f"\nDemo accounts (also in {stack.paths.credentials}, mode 0600):")
    for role, who in stack.credentials.items():
        if stack.options.demo == "none" and role != "admin":
            continue  # only the admin exists without the demo
        print(f"  {role:<9} {who['email']}  password: {who['password']}")
    print(f"Logs: {stack.paths.logs}/*.log    Stop: Ctrl-C\n", flush=True)


def _watch(stack: LocalStack) -> None:
    """Wait for a signal; report any process that dies meanwhile."""
    reported: set[str] = set()
    while True:
        time.sleep(1.0)
        for name, proc in stack.processes.items():
            if proc.pid is None and name not in reported:
                reported.add(name)
                print(f"warning: {name} exited (see {proc.log_path})", flush=True)


def up(args: argparse.Namespace) -> int:
    """Start the stack and keep it running until SIGINT or SIGTERM."""
    demo: DemoMode = "none" if args.no_demo else ("small" if args.small_demo else "full")
    ports = Ports.from_base(args.base_port, args.pg_base_port)
    if problem := _preflight(args, ports):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    options = StackOptions(
        root=args.data_dir,
        ports=ports,
        durable=not args.no_fsync,
        demo=demo,
        wipe=args.wipe,
        log_level=args.log_level,
        tls=args.tls,
    )
    stack = LocalStack(options, progress=line_printer(sys.stdout))
    started = time.monotonic()
    try:
        stack.start()
    except PortInUseError as exc:
        print(f"error: {exc}; free it or choose other ports with --base-port", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit):
        print("interrupted during start-up; everything stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"error: {exc}\nlogs: {stack.paths.logs}", file=sys.stderr)
        return 1
    prometheus = None
    try:
        if args.prometheus:
            prometheus = PrometheusProcess(
                stack.paths.root / "prometheus",
                args.base_port + PROMETHEUS_OFFSET,
                scrape_config(stack, interval="5s"),
            ).start()
        _print_summary(stack, prometheus, time.monotonic() - started)
        _watch(stack)
    except (KeyboardInterrupt, SystemExit):
        print("\nstopping...", flush=True)
    finally:
        if prometheus:
            prometheus.stop()
        stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `cinema` and `python -m deploy.local`."""
    signal.signal(signal.SIGTERM, _raise_exit)
    args = parse_args(argv)
    if args.command == "up":
        return up(args)
    print(json.dumps({"error": f"unknown command {args.command}"}), file=sys.stderr)
    return 2
