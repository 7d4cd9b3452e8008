"""Settings of one global_api process (environment prefix `GLOBAL_`)."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.observability import AccessLog


class GlobalSettings(BaseSettings):
    """Everything the global API process is configured with."""

    model_config = SettingsConfigDict(env_prefix="GLOBAL_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/cinema_global"
    db_pool_size: int = 10
    db_max_overflow: int = 10
    log_level: str = "INFO"
    # The access log at INFO: every 5xx and every answer slower than the threshold, and one in
    # N of the others (1: all, 0: none); counts and latencies are in /metrics regardless.
    access_log_sample: int = Field(100, ge=0)
    access_log_slow_ms: float = Field(500.0, ge=0)
    startup_db_wait_seconds: float = Field(30.0, ge=0)

    # Argon2id cost; production defaults follow RFC 9106's second recommendation.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_cost: int = Field(65536, ge=8, description="KiB")
    argon2_parallelism: int = Field(4, ge=1)
    argon2_max_concurrent: int = Field(
        1,
        ge=1,
        description="hashes at once per process: each takes argon2_memory_cost KiB and its"
        " lanes already run in parallel threads",
    )

    access_token_ttl_seconds: int = Field(900, ge=30, le=86400)
    refresh_token_ttl_seconds: int = Field(30 * 86400, ge=60)
    # A retired key stays published this long beyond the access-token lifetime (clock skew).
    key_publish_margin_seconds: int = Field(120, ge=0)

    login_failure_threshold: int = Field(5, ge=1, le=1000)
    login_failure_window_seconds: int = Field(900, ge=1)

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None

    def access_log(self) -> AccessLog:
        """Which answered requests the access log writes."""
        return AccessLog(self.access_log_sample, self.access_log_slow_ms)


@lru_cache
def settings_from_env() -> GlobalSettings:
    """Settings read once from the environment."""
    return GlobalSettings()


# async on purpose: FastAPI runs a plain `def` dependency in its threadpool (a costly hop).
async def get_settings(request: Request) -> GlobalSettings:
    """The settings of the app serving this request (tests build apps with their own)."""
    settings: GlobalSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[GlobalSettings, Depends(get_settings)]
