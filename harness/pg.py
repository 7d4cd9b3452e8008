"""Throwaway or kept PostgreSQL servers for tests and the local stack.

Three paths, same interface (`PgServer.admin_dsn`): DSNs from the environment, a testcontainers
`PostgresContainer` when Docker is reachable (or asked for), or a server started here from local
binaries (PATH, `pg_config`, `/usr/lib/postgresql/*/bin`, or `CINEMA_PG_BIN`). The schema needs
the `btree_gist` contrib extension, so the binaries must come with contrib (Debian's
`postgresql` package does; the `pgserver` wheel does not).
"""

import atexit
import contextlib
import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg import sql

log = logging.getLogger("pg")


_HANDED_OUT: set[int] = set()

# Settings of every durable server (the local stack's, benchmarks'), with the same values in
# docker-compose.regions.yml and deploy/k8s (tests/deploy/test_pg_settings.py). Measured in
# docs/benchmarks/floor.md, "Server settings": a fifth less WAL per hold after a checkpoint
# (lz4 full-page images) at no measurable CPU, and a checkpoint (so a full-page image of every
# page written again) every 15 minutes instead of 5. fsync, synchronous_commit and
# full_page_writes keep their defaults (on).
DURABLE_SETTINGS: dict[str, str] = {
    "wal_compression": "lz4",
    "checkpoint_timeout": "15min",
    "max_wal_size": "4GB",
}


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now and was never returned before.

    Servers bind their port a while after it is picked: never handing a port out twice keeps
    two servers started together from picking the same one.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class PgServer(Protocol):
    """A reachable PostgreSQL server on which we may create databases."""

    @property
    def admin_dsn(self) -> str: ...

    def stop(self) -> None: ...


def dsn_for(admin_dsn: str, dbname: str) -> str:
    """The same server's DSN for another database."""
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    info["dbname"] = dbname
    return (
        "postgresql://"
        + _userinfo(info)
        + f"{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{dbname}"
    )


def _userinfo(info: Mapping[str, object]) -> str:
    user = str(info.get("user") or "postgres")
    password = info.get("password")
    return f"{user}:{password}@" if password else f"{user}@"


def create_database(
    admin_dsn: str, name: str, *, template: str | None = None, drop_existing: bool = False
) -> str:
    """Create database `name` (optionally from a template) and return its DSN."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if drop_existing:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template))
        conn.execute(query)
    return dsn_for(admin_dsn, name)


def database_exists(admin_dsn: str, name: str) -> bool:
    """Tell whether database `name` exists."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database `name`, disconnecting its sessions."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass
class ExternalServer:
    """A server we were given a DSN for; we never stop it."""

    admin_dsn: str

    def stop(self) -> None:
        """Leave the server running: it is not ours."""


def find_pg_bin() -> Path | None:
    """Locate a directory holding `initdb`, `pg_ctl` and `postgres`."""
    candidates: list[Path] = []
    if env := os.environ.get("CINEMA_PG_BIN"):
        candidates.append(Path(env))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """initdb and postgres refuse root: pick an ordinary account to run them as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and no 'postgres' or 'nobody' account to run PostgreSQL")


@dataclass
class LocalServer:
    """A PostgreSQL server started from local binaries on 127.0.0.1."""

    data_dir: Path
    port: int
    bin_dir: Path
    durable: bool = True
    keep: bool = False
    statement_stats: bool = False  # load pg_stat_statements (when this build ships it)
    # Server settings on the command line; None: DURABLE_SETTINGS for a durable server, none
    # for a throwaway one. A benchmark that changes settings with ALTER SYSTEM passes {}: the
    # command line would override them.
    settings: Mapping[str, str] | None = None
    _owner: pwd.struct_passwd | None = field(default=None, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def admin_dsn(self) -> str:
        """DSN of the `postgres` database as superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        kwargs = {"user": self._owner.pw_uid, "group": self._owner.pw_gid} if self._owner else {}
        result = subprocess.run(
            list(args), capture_output=True, text=True, check=False, cwd="/", **kwargs
        )  # type: ignore[call-overload]
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}")

    def start(self) -> "LocalServer":
        """Initialise the data directory if new, then start and wait until ready."""
        self._owner = _unprivileged_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._owner:
            _chown_tree(self.data_dir.parent, self._owner)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        elif (self.data_dir / "postmaster.pid").exists():
            self._stop_quietly()  # a server left behind by a crashed run
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.data_dir}",
            "-c max_connections=300",
            "-c shared_buffers=128MB",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        settings = self.settings
        if settings is None:
            settings = DURABLE_SETTINGS if self.durable else {}
        options += [f"-c {name}={value}" for name, value in settings.items()]
        if (
            self.statement_stats
            and (self.bin_dir.parent / "lib" / "pg_stat_statements.so").exists()
        ):
            options.append("-c shared_preload_libraries=pg_stat_statements")
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            " ".join(options),
            "start",
        )
        self._watchdog = _start_watchdog(self)
        atexit.register(self.stop)
        return self

    def _stop_quietly(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"
            )

    def stop(self) -> None:
        """Stop the server (fast shutdown) and drop its data unless it is kept."""
        if self._watchdog and self._watchdog.poll() is None:
            self._watchdog.terminate()
        self._stop_quietly()
        if not self.keep:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def kill(self) -> None:
        """Stop the server abruptly (immediate shutdown), for fault tests."""
        with contextlib.suppress(RuntimeError):
            self._run(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "-w",
                "stop",
            )

    def restart(self) -> None:
        """Start the server again after `kill` or `stop` on the same port and data."""
        if self._watchdog and self._watchdog.poll() is None:
            self._watchdog.terminate()
        self.start()


def _chown_tree(root: Path, owner: pwd.struct_passwd) -> None:
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):
            os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)


def _start_watchdog(server: LocalServer) -> subprocess.Popen[bytes]:
    """Stop the server if this process dies without cleaning up (SIGKILL, crash)."""
    pg_ctl = server.bin_dir / "pg_ctl"
    stop = f"'{pg_ctl}' -D '{server.data_dir}' -m fast stop"
    if server._owner:
        stop = f'su -s /bin/sh {server._owner.pw_name} -c "{stop}"'
    script = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1"
    if not server.keep:
        script += f"; rm -rf '{server.data_dir.parent}'"
    return subprocess.Popen(
        ["/bin/sh", "-c", script],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class ContainerServer:
    """A PostgreSQL container started through testcontainers."""

    container: object
    admin_dsn: str

    def stop(self) -> None:
        """Stop and remove the container."""
        self.container.stop()  # type: ignore[attr-defined]


def docker_reachable() -> bool:
    """Tell whether a Docker engine answers."""
    try:
        import docker  # type: ignore[import-untyped]  # ships with testcontainers

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def start_server(
    name: str,
    *,
    data_dir: Path | None = None,
    port: int | None = None,
    durable: bool = True,
    statement_stats: bool = False,
    settings: Mapping[str, str] | None = None,
) -> PgServer:
    """Start (or reach) a PostgreSQL server for `name`, choosing the path as documented above.

    With `statement_stats`, a local server loads pg_stat_statements if its build has it.
    """
    if dsn := os.environ.get(f"CINEMA_PG_DSN_{name.upper().replace('-', '_')}"):
        return ExternalServer(dsn)
    mode = os.environ.get("CINEMA_PG_MODE", "auto")
    if mode == "docker" or (mode == "auto" and find_pg_bin() is None and docker_reachable()):
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None).start()
        return ContainerServer(container, container.get_connection_url())
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise RuntimeError(
            "no PostgreSQL server binaries found: install Debian's 'postgresql' "
            "package (`make install` does it when run as root), or set CINEMA_PG_DSN_<NAME>"
        )
    keep = data_dir is not None
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix=f"cinema-pg-{name}-")) / "data"
    server = LocalServer(
        data_dir=data_dir,
        port=port or free_port(),
        bin_dir=bin_dir,
        durable=durable,
        keep=keep,
        statement_stats=statement_stats,
        settings=settings,
    )
    return server.start()
