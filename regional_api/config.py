"""Settings of one regional_api process (environment prefix `REGIONAL_`)."""

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.observability import AccessLog, Admission
from common.priority import finishes_sale
from regional_api.onsale.admitter import IDLE_SECONDS, IN_FLIGHT, IN_FLIGHT_SECONDS
from regional_api.payments.provider import PaymentProvider, SimulatedProvider
from regional_api.payments.remote import HttpProvider


class RegionalSettings(BaseSettings):
    """Everything a regional API process is configured with."""

    model_config = SettingsConfigDict(env_prefix="REGIONAL_", extra="ignore")

    region: str = "eu-west"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/cinema_eu_west"
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    global_api_url: str = "http://127.0.0.1:8000"
    jwks_url: str | None = None
    jwks_cache_file: Path | None = None
    jwks_refresh_seconds: float = 300.0
    # The one pool's connections: hot paths and sessions alike (docs/deployment.md's budget).
    db_pool_size: int = Field(40, ge=1)
    # Requests one process works on at once (0: no cap); more wait, then get 503 `overloaded`.
    max_in_flight: int = Field(0, ge=0)
    max_queued: int | None = Field(None, ge=0)  # default: 4 x max_in_flight
    queue_timeout_seconds: float = Field(5.0, gt=0)
    log_level: str = "INFO"
    # The access log at INFO: every 5xx and every answer slower than the threshold, and one in
    # N of the others (1: all, 0: none); counts and latencies are in /metrics regardless.
    access_log_sample: int = Field(100, ge=0)
    access_log_slow_ms: float = Field(500.0, ge=0)

    hold_ttl_seconds: int = Field(600, ge=10)
    hold_extension_seconds: int = Field(300, ge=10)
    hold_max_extensions: int = Field(2, ge=0)
    hold_cap_seconds: int = Field(1800, ge=10)
    max_seats_per_customer_show: int = Field(10, ge=1)
    cancel_cutoff_minutes: int = Field(60, ge=0)
    cleaning_minutes: int = Field(15, ge=0)
    sweeper_interval_seconds: float = 30.0
    # How long a replica may refuse holds on a show it saw with no free seat (0: never).
    full_show_hint_seconds: float = Field(1.0, ge=0)
    # How old a cached show read or seat map may be when served (0: every read queries).
    show_cache_max_age_ms: float = Field(250.0, ge=0)
    show_cache_max_entries: int = Field(512, ge=1)  # a 384-seat map is about 50 KB

    # An on-sale's admitted customers on their way to a hold (admitted in the last
    # `onsale_in_flight_seconds`, holding nothing) at most, whatever the pace (0: no cap): fewer
    # requests wait at the stack at once (lower latency), at the cost of a slower sell-out
    # (docs/benchmarks/onsale-line.md, "Ninth round"). A silent customer stops counting after
    # the window (at most `IDLE_SECONDS`, 60: the count is of the idle ones).
    onsale_admitted_in_flight: int = Field(IN_FLIGHT, ge=0)
    onsale_in_flight_seconds: float = Field(IN_FLIGHT_SECONDS, gt=0, le=IDLE_SECONDS)

    # The payment provider: an HTTP API (the simulator's or a real one), else simulated in process.
    payment_provider_url: str | None = None
    payment_provider_timeout_seconds: float = Field(5.0, gt=0)
    # The simulated provider answers after this long, like a card processor across a network.
    payment_provider_latency_ms: float = Field(300.0, ge=0)
    # A payment keeps its seats held this long past the provider's timeout, so they cannot lapse
    # while it waits; the reconciler settles a payment left pending past it.
    payment_guard_seconds: float = Field(60.0, ge=1)
    payment_reconcile_interval_seconds: float = Field(10.0, gt=0)
    # Past the provider's timeout plus this margin a live request has settled: the reconciler
    # may settle its payment.
    payment_reconcile_margin_seconds: float = Field(5.0, gt=0)

    def access_log(self) -> AccessLog:
        """Which answered requests the access log writes."""
        return AccessLog(self.access_log_sample, self.access_log_slow_ms)

    @property
    def effective_jwks_url(self) -> str:
        """Where to fetch the token-signing public keys."""
        return self.jwks_url or f"{self.global_api_url.rstrip('/')}/.well-known/jwks.json"

    def payment_guard(self, provider: PaymentProvider) -> timedelta:
        """How long past its opening a payment's seats stay held for it."""
        return timedelta(seconds=provider.timeout_seconds + self.payment_guard_seconds)

    def payment_provider(self) -> PaymentProvider:
        """The configured payment provider."""
        timeout = self.payment_provider_timeout_seconds
        if self.payment_provider_url is not None:
            return HttpProvider(self.payment_provider_url, timeout_seconds=timeout)
        latency = self.payment_provider_latency_ms / 1000
        return SimulatedProvider(timeout_seconds=timeout, latency_seconds=latency)

    def admission(self) -> Admission | None:
        """The cap on requests in flight, if one is set."""
        if self.max_in_flight == 0:
            return None
        queued = 4 * self.max_in_flight if self.max_queued is None else self.max_queued
        return Admission(
            self.max_in_flight, queued, self.queue_timeout_seconds, prioritized=finishes_sale
        )


@lru_cache
def settings_from_env() -> RegionalSettings:
    """Settings read once from the environment."""
    return RegionalSettings()


# async on purpose: FastAPI runs a plain `def` dependency in its threadpool (a costly hop).
async def get_settings(request: Request) -> RegionalSettings:
    """The settings of the app serving this request (tests build apps with their own)."""
    settings: RegionalSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[RegionalSettings, Depends(get_settings)]
