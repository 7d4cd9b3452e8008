"""The whole system on one machine: PostgreSQL servers, migrations, services, demo data."""

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from common.migrate import upgrade
from deploy.local import dataset, demo
from deploy.local.processes import ServiceProcess
from deploy.local.topology import (
    GLOBAL_DB,
    REGIONS,
    Ports,
    StackPaths,
    check_ports_free,
    global_env,
    regional_env,
    router_env,
    router_name,
    url,
)
from harness.pg import PgServer, create_database, database_exists, dsn_for, start_server
from harness.tls import TlsFiles, make_throwaway_ca

ROOT = Path(__file__).resolve().parents[2]
Progress = Callable[[str], None]
DemoMode = Literal["full", "small", "none"]


@dataclass
class StackOptions:
    """How to run the local stack."""

    root: Path = ROOT / "var"
    ports: Ports = field(default_factory=Ports.from_base)
    durable: bool = True
    demo: DemoMode = "full"
    wipe: bool = False
    log_level: str = "INFO"
    ready_timeout: float = 60.0
    tls: bool = False  # router to regions over HTTPS with mutual TLS, from a throwaway CA
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)  # by app, for tests
    statement_stats: bool = False  # PostgreSQL loads pg_stat_statements (benchmarks' --pg-stats)


class LocalStack:
    """Starts, stops, kills and restarts every process of the system; see `deploy.local.cli`."""

    def __init__(self, options: StackOptions, *, progress: Progress = print) -> None:
        self.options = options
        self.ports = options.ports
        self.paths = StackPaths(options.root.resolve())
        self.progress = progress
        self.servers: dict[str, PgServer] = {}
        self.dsns: dict[str, str] = {}
        self.processes: dict[str, ServiceProcess] = {}
        self.credentials: dict[str, dict[str, str]] = {}
        self.demo_summary: dict[str, Any] | None = None
        self.tls: TlsFiles | None = None

    # --- public handles ---------------------------------------------------------------------

    @property
    def router_url(self) -> str:
        """The public entry point."""
        return url(self.ports.router)

    @property
    def router_urls(self) -> list[str]:
        """Every router instance's base URL (`ports.more_routers`: a load balancer's targets)."""
        return [url(port) for port in self.ports.routers]

    @property
    def global_url(self) -> str:
        """global_api's own base URL."""
        return url(self.ports.global_api)

    def regional_urls(self, region: str) -> list[str]:
        """Base URLs of a region's replicas."""
        scheme = "https" if self.options.tls else "http"
        return [url(port, scheme) for port in self.ports.regional[region]]

    def process(self, name: str) -> ServiceProcess:
        """One process by name: `global_api`, `router` (`router-2`...), `eu-west-1`, `eu-west-2`,
        `us-east-1`."""
        return self.processes[name]

    def urls(self) -> dict[str, str]:
        """Every URL worth printing: entry point, API docs, metrics, frontends."""
        found = {"router (public entry)": self.router_url, "frontends": f"{self.router_url}/app/"}
        for name, proc in self.processes.items():
            docs = "/router/docs" if name.startswith("router") else "/docs"
            found[f"{name} API docs"] = f"{proc.url}{docs}"
            found[f"{name} metrics"] = f"{proc.url}/metrics"
        return found

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> "LocalStack":
        """Start everything in order; on any failure stop what was started and re-raise."""
        try:
            self._prepare()
            self._start_databases()
            self._start_services()
            self._load_demo()
        except BaseException:
            self.progress("start-up failed: stopping what was started")
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the services (SIGTERM by PID, all at once), then the PostgreSQL servers."""
        running = [proc for proc in reversed(self.processes.values()) if proc.pid is not None]
        for proc in running:
            self.progress(f"stopping {proc.name} (pid {proc.pid})")
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda proc: proc.stop(), running))
            _kill_unrecorded_children()
            servers = [self.servers.pop(name) for name in reversed(list(self.servers))]
            if servers:
                self.progress(f"stopping {len(servers)} PostgreSQL servers")
            list(pool.map(lambda server: server.stop(), servers))

    def restart(self, name: str) -> ServiceProcess:
        """Start a stopped or killed process again and wait until it is ready."""
        proc = self.processes[name].restart()
        proc.wait_ready(self.options.ready_timeout)
        return proc

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- steps ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        check_ports_free(self.ports)  # first: a busy port must not cost the data of --wipe
        if self.options.wipe and self.paths.root.exists():
            self.progress(f"wiping {self.paths.root}")
            shutil.rmtree(self.paths.root)
        for directory in (self.paths.root, self.paths.logs, self.paths.root / "jwks"):
            directory.mkdir(parents=True, exist_ok=True)
        # PostgreSQL runs as an unprivileged account when we are root: it must reach its data.
        (self.paths.root / "pg").mkdir(exist_ok=True)
        for directory in (self.paths.root, self.paths.root / "pg"):
            directory.chmod(0o755)
        self.credentials = _load_or_make_credentials(self.paths.credentials)
        if self.options.tls:
            self.tls = make_throwaway_ca(self.paths.root / "tls")
            self.progress(f"tls: a throwaway CA and certificates in {self.tls.directory}")

    def _start_databases(self) -> None:
        names = {"global": GLOBAL_DB} | {spec.code: spec.db_name for spec in REGIONS}
        # initdb and start-up wait on other processes: run the three servers' in parallel.
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = {name: pool.submit(self._start_server, name) for name in names}
            errors = []
            for name, future in futures.items():
                try:
                    self.servers[name] = future.result()
                except Exception as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]

    def _migrate(self, name: str) -> None:
        """Create the database of server `name` if missing and apply its migrations."""
        db_name = (
            GLOBAL_DB if name == "global" else next(s.db_name for s in REGIONS if s.code == name)
        )
        server = self.servers[name]
        if not database_exists(server.admin_dsn, db_name):
            create_database(server.admin_dsn, db_name)
        self.dsns[name] = dsn_for(server.admin_dsn, db_name)
        service = "global_api" if name == "global" else "regional_api"
        self.progress(f"postgres {name}: migrating {db_name}")
        upgrade(ROOT / service / "migrations", self.dsns[name])

    def _start_server(self, name: str) -> PgServer:
        port = self.ports.postgres[name]
        self.progress(f"postgres {name}: starting on port {port}")
        return start_server(
            name,
            data_dir=self.paths.pg_data(name),
            port=port,
            durable=self.options.durable,
            statement_stats=self.options.statement_stats,
        )

    def _bootstrap_admin(self) -> subprocess.Popen[str]:
        """Run global_api's bootstrap CLI (in the background: it overlaps global_api's start)."""
        admin = self.credentials["admin"]
        self.progress(f"global_api: ensuring admin {admin['email']}")
        env = {
            **os.environ,
            **global_env(dsn=self.dsns["global"], extra=self._extra("global_api")),
            "CINEMA_BOOTSTRAP_PASSWORD": admin["password"],
        }
        command = [sys.executable, "-m", "global_api.bootstrap_admin", "--email", admin["email"]]
        command += ["--password-env", "CINEMA_BOOTSTRAP_PASSWORD"]
        return subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    @staticmethod
    def _finish_bootstrap(proc: subprocess.Popen[str]) -> None:
        _, stderr = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"admin bootstrap failed: {stderr.strip()[-500:]}")

    def _spawn(self, name: str, app: str, port: int, env: dict[str, str]) -> ServiceProcess:
        log_path = self.paths.logs / f"{name}.log"
        tls = self.tls if app == "regional_api" else None  # TLS between router and regions
        proc = ServiceProcess(name=name, app=app, port=port, env=env, log_path=log_path, tls=tls)
        self.processes[name] = proc
        self.progress(f"{name}: starting on {proc.url} (log {log_path})")
        return proc.start()

    def _wait(self, procs: list[ServiceProcess]) -> None:
        for proc in procs:
            proc.wait_ready(self.options.ready_timeout)
            self.progress(f"{proc.name}: ready")

    def _start_services(self) -> None:
        self._migrate("global")
        bootstrap = self._bootstrap_admin()
        try:
            env = global_env(
                dsn=self.dsns["global"],
                log_level=self.options.log_level,
                extra=self._extra("global_api"),
            )
            global_api = self._spawn("global_api", "global_api", self.ports.global_api, env)
            # Alembic's context is process-global: regions migrate one at a time, meanwhile
            # global_api boots in its own process.
            for spec in REGIONS:
                self._migrate(spec.code)
            self._wait([global_api])
            self._finish_bootstrap(bootstrap)
        finally:
            if bootstrap.poll() is None:
                bootstrap.kill()
        self._register_regions()
        self._start_regions_and_router()
        self._wait_routed()

    def _start_regions_and_router(self) -> None:
        level = self.options.log_level
        started = []
        for spec in REGIONS:
            for n, port in enumerate(self.ports.regional[spec.code], 1):
                env = regional_env(
                    spec,
                    dsn=self.dsns[spec.code],
                    global_url=self.global_url,
                    jwks_cache=self.paths.jwks_cache(spec.code, n),
                    log_level=level,
                    extra=self._extra("regional_api"),
                )
                started.append(self._spawn(f"{spec.code}-{n}", "regional_api", port, env))
        env = router_env(
            global_url=self.global_url,
            static_config=self.paths.router_static,
            log_level=level,
            extra=(self.tls.router_env() if self.tls else {}) | self._extra("router"),
        )
        # Stateless instances with the same settings; each probes the regions on its own.
        for n, port in enumerate(self.ports.routers, 1):
            started.append(self._spawn(router_name(n), "router", port, env))
        self._wait(started)

    def _extra(self, app: str) -> dict[str, str]:
        return self.options.extra_env.get(app, {})

    def _wait_routed(self) -> None:
        """Wait until every router has admitted an endpoint of every region (rise probes)."""
        deadline = time.monotonic() + self.options.ready_timeout
        with httpx.Client(timeout=2.0) as client:  # one TLS context (50 ms of CPU) for every poll
            for n, base in enumerate(self.router_urls, 1):
                for spec in REGIONS:
                    probe = f"{base}/regions/{spec.code}/healthz"
                    while True:
                        with contextlib.suppress(httpx.HTTPError):
                            if client.get(probe).status_code == 200:
                                break
                        if time.monotonic() > deadline:
                            raise TimeoutError(
                                f"router does not reach region {spec.code} ({probe})"
                            )
                        time.sleep(0.05)
                self.progress(f"{router_name(n)}: every region reachable")

    def _admin_api(self, client: httpx.Client, *, via_router: bool) -> demo.DemoApi:
        base = self.router_url if via_router else self.global_url
        regions = {s.code: f"{self.router_url}/regions/{s.code}" for s in REGIONS}
        api = demo.DemoApi(client, base, regions)
        admin = self.credentials["admin"]
        try:
            api.token = api.login(admin["email"], admin["password"])
        except demo.ApiError as exc:
            raise RuntimeError(
                f"cannot log in as {admin['email']} with the password in "
                f"{self.paths.credentials} ({exc}); start again with --wipe"
            ) from exc
        return api

    def _register_regions(self) -> None:
        """Put every region's endpoints in the directory and write the router's static map."""
        endpoints = {spec.code: self.regional_urls(spec.code) for spec in REGIONS}
        with httpx.Client(timeout=30.0) as client:
            api = self._admin_api(client, via_router=False)
            demo.register_regions(api, endpoints)
            directory_map = api.call("GET", f"{self.global_url}/directory/map")
        self.paths.router_static.write_text(json.dumps(directory_map, indent=2))
        self.progress(f"directory: regions {', '.join(endpoints)} registered")

    def _load_demo(self) -> None:
        if self.options.demo == "none":
            return
        with httpx.Client(timeout=60.0) as client:
            api = self._admin_api(client, via_router=True)
            if demo.demo_loaded(api):
                self.progress("demo: already loaded, skipping")
                return
            self.progress("demo: loading through the router (first start only)")
            self.demo_summary = demo.load_demo(
                api, self.credentials, small=self.options.demo == "small", progress=self.progress
            )
        _write_private(self.paths.credentials, self.credentials)
        self.progress(f"demo: {self.demo_summary['shows']} shows loaded")


def _write_private(path: Path, document: dict[str, Any]) -> None:
    """Write a JSON file readable by its owner only (it holds passwords)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle, indent=2)


def _load_or_make_credentials(path: Path) -> dict[str, dict[str, str]]:
    """The demo accounts' credentials: generated at first start, then read back."""
    if path.exists():
        loaded: dict[str, dict[str, str]] = json.loads(path.read_text())
        return loaded
    credentials = {
        role: who | {"password": secrets.token_urlsafe(12)}
        for role, who in dataset.people().items()
    }
    _write_private(path, credentials)
    return credentials


def _kill_unrecorded_children() -> None:
    """Kill service processes of ours that a Ctrl-C cut off before they were recorded.

    A signal can land between fork and the assignment of the child's handle; the child then
    runs with no handle to stop it by, so find it by parent PID (Linux /proc) instead.
    """
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == me and b"uvicorn" in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(stat.parent.name), signal.SIGKILL)
