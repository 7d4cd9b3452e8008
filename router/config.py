"""Settings of one router process (environment prefix `ROUTER_`)."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

JWKS_PATH = "/.well-known/jwks.json"  # on global_api

DEFAULT_STATIC_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "router.example.json"


class RouterSettings(BaseSettings):
    """Everything a router process is configured with."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    global_api_url: str = "http://127.0.0.1:8000"
    static_config_file: Path | None = DEFAULT_STATIC_CONFIG
    map_refresh_seconds: float = Field(10.0, gt=0)
    map_miss_refresh_min_seconds: float = Field(1.0, ge=0)
    map_fetch_timeout_seconds: float = Field(2.0, gt=0)
    jwks_refresh_seconds: float = Field(300.0, gt=0)
    jwks_cache_file: Path | None = Field(
        None, description="keeps the token keys across restarts while global_api is down"
    )

    probe_interval_seconds: float = Field(1.0, gt=0)
    probe_timeout_seconds: float = Field(0.5, gt=0)
    probe_rise: int = Field(2, ge=1)
    probe_fall: int = Field(2, ge=1)
    passive_fall: int = Field(3, ge=1, description="consecutive 5xx answers that eject")

    request_deadline_seconds: float = Field(15.0, gt=0)
    connect_timeout_seconds: float = Field(1.0, gt=0)
    attempt_timeout_seconds: float = Field(10.0, gt=0, description="per attempt, to headers")
    retry_budget: int = Field(2, ge=0, description="extra attempts per request")
    retry_ratio: float = Field(
        0.2, ge=0, description="retries per region may be this fraction of its requests"
    )
    retry_floor: int = Field(10, ge=0, description="retries per window allowed whatever the ratio")
    retry_window_seconds: float = Field(10.0, gt=0)
    max_in_flight_per_endpoint: int = Field(
        16,
        ge=1,
        description="requests in flight per endpoint but payments (a regional worker's fill: "
        "its CPU work); beyond: they wait in line",
    )
    endpoint_pods: dict[str, int] = Field(
        default_factory=dict,
        description="endpoint URL -> the most pods behind it (a region's Service or Ingress): "
        "the in-flight cap above and the connection pool are per pod",
    )
    endpoint_pods_dns: dict[str, str] = Field(
        default_factory=dict,
        description="endpoint URL -> a headless Service name whose addresses are its ready "
        "pods, counted every probe interval (at most endpoint_pods)",
    )
    max_payments_in_flight_per_endpoint: int = Field(
        64,
        ge=1,
        description="payments in flight per endpoint, counted apart from the cap above: the "
        "replica lends its slot while the provider decides; beyond: they wait in line",
    )
    line_max_per_region: int = Field(
        2048,
        ge=0,
        description="requests that may wait for a slot of a saturated region (0: refuse at once)",
    )
    line_timeout_seconds: float = Field(
        5.0, gt=0, description="how long a request waits in the line before 503 region_overloaded"
    )
    retry_backoff_seconds: float = Field(0.01, ge=0)
    retry_backoff_max_seconds: float = Field(0.2, ge=0)
    unavailable_retry_after_seconds: int = Field(2, ge=1)

    max_body_bytes: int = Field(1_048_576, ge=0)
    upstream_connections: int = Field(256, ge=1, description="pool size per endpoint")
    upstream_keepalive_seconds: float = Field(
        4.0, gt=0, description="below uvicorn's 5 s so the upstream never closes first"
    )

    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of the proxies in front of the router whose X-Forwarded-For is"
        " believed (comma-separated); none: the client is the socket peer",
    )
    upstream_ca_file: Path | None = Field(
        None, description="CA bundle that https:// upstreams are verified against; none: system"
    )
    upstream_cert_file: Path | None = Field(
        None, description="client certificate (PEM) for upstreams that require mutual TLS"
    )
    upstream_key_file: Path | None = Field(
        None, description="its private key, unless the certificate file holds it"
    )

    rate_limit_enabled: bool = True
    login_rate_per_second: float = Field(5.0, gt=0)
    login_burst: int = Field(20, ge=1)
    hold_rate_per_second: float = Field(20.0, gt=0)
    hold_burst: int = Field(60, ge=1)
    rate_limit_max_clients: int = Field(100_000, ge=1)

    fanout_region_deadline_seconds: float = Field(2.0, gt=0)
    fanout_max_items: int = Field(500, ge=1)

    # Bounds on client connections, enforced by router.proxy.bounds (docs/operations.md).
    client_header_timeout_seconds: float = Field(
        10.0, gt=0, description="from connect or a request's first byte to the end of its headers"
    )
    client_body_timeout_seconds: float = Field(
        10.0, gt=0, description="to send a body, plus one second per minimum-rate bytes sent"
    )
    client_body_min_bytes_per_second: float = Field(
        1024.0, gt=0, description="each body byte extends the body deadline by 1/this seconds"
    )
    client_keepalive_seconds: float = Field(5.0, gt=0, description="idle between two requests")
    client_write_timeout_seconds: float = Field(
        10.0, gt=0, description="an answer may sit undrained this long before the client is cut off"
    )
    max_header_bytes: int = Field(
        32_768, ge=1024, description="request line and headers; 431 beyond"
    )
    max_header_count: int = Field(100, ge=1, description="request headers; 431 beyond")
    max_pipelined_requests: int = Field(
        32, ge=1, description="requests queued behind the one being answered; closed beyond"
    )
    max_connections_per_client: int = Field(
        128, ge=1, description="open connections per peer address (trusted proxies exempt); 429"
    )

    # Held watches of a line's state (router.proxy.watch, docs/operations.md).
    watchers_max: int = Field(
        20_000,
        ge=0,
        description="watch requests held open at once; 503 with Retry-After beyond (3.7 KiB each"
        " with its connection: docs/operations.md)",
    )
    watch_timeout_seconds: float = Field(
        20.0, gt=0, description="a watch with no news is answered after this (plus jitter)"
    )
    watch_jitter_seconds: float = Field(
        5.0, ge=0, description="up to this much more, at random, so re-opens do not bunch up"
    )
    # One upstream request per watched show per read, whatever the watchers; it is one step of
    # an admitted customer's path (docs/benchmarks/onsale-line.md, fifth round: was 0.25).
    watch_read_interval_seconds: float = Field(
        0.1, gt=0, description="how often a watched state is read upstream, once for all"
    )

    access_log: bool = True
    log_level: str = "INFO"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _caps_fit_the_pool(self) -> "RouterSettings":
        if self.max_in_flight_per_endpoint + self.max_payments_in_flight_per_endpoint > (
            self.upstream_connections
        ):
            raise ValueError(
                "ROUTER_MAX_IN_FLIGHT_PER_ENDPOINT + ROUTER_MAX_PAYMENTS_IN_FLIGHT_PER_ENDPOINT"
                " must not exceed ROUTER_UPSTREAM_CONNECTIONS"
            )
        return self

    @model_validator(mode="after")
    def _key_needs_a_certificate(self) -> "RouterSettings":
        if self.upstream_key_file is not None and self.upstream_cert_file is None:
            raise ValueError("ROUTER_UPSTREAM_KEY_FILE needs ROUTER_UPSTREAM_CERT_FILE")
        return self

    @property
    def jwks_url(self) -> str:
        """Where to fetch the token-signing public keys."""
        return f"{self.global_api_url.rstrip('/')}{JWKS_PATH}"


@lru_cache
def settings_from_env() -> RouterSettings:
    """Settings read once from the environment."""
    return RouterSettings()
