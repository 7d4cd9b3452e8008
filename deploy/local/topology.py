"""What the local stack runs: regions, processes, ports, and each process's environment."""

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RegionSpec:
    """One region of the local stack."""

    code: str
    name: str
    currency: str
    replicas: int

    @property
    def db_name(self) -> str:
        """Name of the region's database."""
        return "cinema_" + self.code.replace("-", "_")


REGIONS: tuple[RegionSpec, ...] = (
    RegionSpec("eu-west", "Europe West", "EUR", replicas=2),
    RegionSpec("us-east", "US East", "USD", replicas=1),
)
GLOBAL_DB = "cinema_global"
PG_OFFSET = 40  # PostgreSQL servers from base+40 (room for 3 regions of 9 replicas below)
MAX_ROUTERS = 9  # router instances: the first on base, the others from base+2 (base+1: global)
PROMETHEUS_OFFSET = 1090  # `--prometheus`: 9090 for the default base


@dataclass(frozen=True)
class Ports:
    """Every TCP port the stack listens on, by owner."""

    router: int
    global_api: int
    regional: dict[str, tuple[int, ...]]
    postgres: dict[str, int]
    more_routers: tuple[int, ...] = ()  # router instances 2..N (same settings, same map)

    @classmethod
    def from_base(cls, base: int = 8000, pg_base: int | None = None, routers: int = 1) -> "Ports":
        """The documented layout, all in base..base+49: router base (instance n > 1 at
        base+n), global base+1, region i's replica r at base+10*i+r, PostgreSQL global, then
        each region, from base+40."""
        _check_routers(routers)
        regional = {
            spec.code: tuple(base + 10 * i + r for r in range(1, spec.replicas + 1))
            for i, spec in enumerate(REGIONS, start=1)
        }
        first_pg = base + PG_OFFSET if pg_base is None else pg_base
        postgres = {name: first_pg + i for i, name in enumerate(("global", *regional_codes()))}
        more = tuple(base + n for n in range(2, routers + 1))
        return cls(base, base + 1, regional, postgres, more)

    @classmethod
    def free(cls, routers: int = 1) -> "Ports":
        """Distinct ports picked free right now (tests run the stack next to other things)."""
        _check_routers(routers)
        count = routers + 1 + sum(s.replicas for s in REGIONS) + 1 + len(REGIONS)
        picked = iter(_free_ports(count))
        regional = {s.code: tuple(next(picked) for _ in range(s.replicas)) for s in REGIONS}
        postgres = {name: next(picked) for name in ("global", *regional_codes())}
        more = tuple(next(picked) for _ in range(routers - 1))
        return cls(next(picked), next(picked), regional, postgres, more)

    @property
    def routers(self) -> tuple[int, ...]:
        """Every router instance's port, the first (`router`) first."""
        return (self.router, *self.more_routers)

    def owners(self) -> list[tuple[int, str]]:
        """Each port with the name of the process that needs it."""
        owned = [(port, router_name(n)) for n, port in enumerate(self.routers, 1)]
        owned.append((self.global_api, "global_api"))
        for code, ports in self.regional.items():
            owned += [(port, f"regional_api {code} #{n}") for n, port in enumerate(ports, 1)]
        owned += [(port, f"postgres {name}") for name, port in self.postgres.items()]
        return owned


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all sockets held open while picking)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _check_routers(routers: int) -> None:
    if not 1 <= routers <= MAX_ROUTERS:
        raise ValueError(f"routers must be 1 to {MAX_ROUTERS}, not {routers}")


def router_name(n: int) -> str:
    """Process name of router instance n (from 1): `router`, then `router-2`, `router-3`..."""
    return "router" if n == 1 else f"router-{n}"


def regional_codes() -> list[str]:
    """Codes of the local regions, in order."""
    return [spec.code for spec in REGIONS]


class PortInUseError(RuntimeError):
    """A port the stack needs is taken by another program."""

    def __init__(self, port: int, service: str) -> None:
        super().__init__(f"port {port} (needed by {service}) is already in use")
        self.port = port
        self.service = service


def check_ports_free(ports: Ports, extra: Sequence[tuple[int, str]] = ()) -> None:
    """Raise PortInUseError for the first taken port (of the stack, then `extra`), before anything starts."""
    seen: dict[int, str] = {}
    for port, service in [*ports.owners(), *extra]:
        if port in seen:
            raise ValueError(f"port {port} assigned to both {seen[port]} and {service}")
        seen[port] = service
        with socket.socket() as sock:
            # Like the servers themselves: connections in TIME_WAIT do not make a port busy.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise PortInUseError(port, service) from None


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps its state (all under one directory, `var/` by default)."""

    root: Path
    logs: Path = field(init=False)
    credentials: Path = field(init=False)
    router_static: Path = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "logs", self.root / "logs")
        object.__setattr__(self, "credentials", self.root / "demo-credentials.json")
        object.__setattr__(self, "router_static", self.root / "router-static.json")

    def pg_data(self, name: str) -> Path:
        """Data directory of one PostgreSQL server."""
        return self.root / "pg" / name / "data"

    def jwks_cache(self, region: str, replica: int) -> Path:
        """JWKS cache file of one regional replica (keeps it verifying when global_api is down)."""
        return self.root / "jwks" / f"{region}-{replica}.json"


def url(port: int, scheme: str = "http") -> str:
    """Loopback base URL of a port."""
    return f"{scheme}://127.0.0.1:{port}"


def global_env(
    *, dsn: str, log_level: str = "INFO", extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment of global_api (settings `GLOBAL_*`)."""
    return {
        "GLOBAL_DATABASE_URL": dsn,
        "GLOBAL_LOG_LEVEL": log_level,
    } | dict(extra or {})


# Requests one replica works on at once; more wait (up to 256, 5 s) or get 503 `overloaded`.
# A slot is CPU work: a payment lends its slot while the provider decides. A replica's core is
# full with a few requests whose statements take a millisecond; more in flight only share the
# event loop, so a pass holder's hold waited behind 64 joins (p99 ~960 ms; with 16, ~340 ms:
# docs/benchmarks/onsale-line.md). 16 is also the router's cap per endpoint.
REGIONAL_ADMISSION = {"REGIONAL_MAX_IN_FLIGHT": "16", "REGIONAL_MAX_QUEUED": "256"}


def regional_env(
    spec: RegionSpec,
    *,
    dsn: str,
    global_url: str,
    jwks_cache: Path,
    log_level: str = "INFO",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment of one regional_api replica (settings `REGIONAL_*`)."""
    return {
        "REGIONAL_REGION": spec.code,
        "REGIONAL_DATABASE_URL": dsn,
        "REGIONAL_CURRENCY": spec.currency,
        "REGIONAL_GLOBAL_API_URL": global_url,
        "REGIONAL_JWKS_CACHE_FILE": str(jwks_cache),
        "REGIONAL_JWKS_REFRESH_SECONDS": "60",
        "REGIONAL_LOG_LEVEL": log_level,
        **REGIONAL_ADMISSION,
    } | dict(extra or {})


def router_env(
    *,
    global_url: str,
    static_config: Path,
    log_level: str = "INFO",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment of the router (settings `ROUTER_*`)."""
    return {
        "ROUTER_GLOBAL_API_URL": global_url,
        "ROUTER_STATIC_CONFIG_FILE": str(static_config),
        "ROUTER_LOG_LEVEL": log_level,
    } | dict(extra or {})
