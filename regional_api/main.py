"""The regional API application: `create_app()` builds it, `uvicorn --factory` serves it."""

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from common.auth import JwksCache, TokenVerifier
from common.db import make_engine, make_sessionmaker, ping
from common.errors import install_error_handlers
from common.observability import configure_logging, instrument, ops_router
from regional_api.clock import Clock
from regional_api.config import RegionalSettings, settings_from_env

SERVICE = "regional_api"

# Feature routers, mounted in this order; each module exposes `router`.
FEATURE_ROUTERS = (
    "regional_api.cinemas.router",
    "regional_api.halls.router",
    "regional_api.movies.router",
    "regional_api.shows.router",
    "regional_api.reservations.router",
    "regional_api.payments.router",
    "regional_api.boxoffice.router",
    "regional_api.reports.router",
)

# Background jobs, each `async def run(app) -> None` looping forever; correctness never needs them.
BACKGROUND_JOBS = ("regional_api.reservations.sweeper",)


def _feature_routers() -> list[APIRouter]:
    routers = []
    for name in FEATURE_ROUTERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # feature not built yet
        routers.append(module.router)
    return routers


def _background_jobs(app: FastAPI) -> list[asyncio.Task[Any]]:
    tasks = []
    for name in BACKGROUND_JOBS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        tasks.append(asyncio.create_task(module.run(app), name=name))
    return tasks


def create_app(
    settings: RegionalSettings | None = None, *, jwks: dict[str, Any] | None = None
) -> FastAPI:
    """Build the regional API; `jwks` pins the trusted keys (tests), else they are fetched."""
    settings = settings or settings_from_env()
    keys = JwksCache(
        None if jwks else settings.effective_jwks_url,
        jwks=jwks,
        cache_file=settings.jwks_cache_file,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url,
            service=SERVICE,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        tasks = _background_jobs(app)
        if jwks is None:
            tasks.append(asyncio.create_task(keys.refresh_forever(settings.jwks_refresh_seconds)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await engine.dispose()

    configure_logging(f"{SERVICE}:{settings.region}", settings.log_level)
    app = FastAPI(
        title=f"Cinema regional API ({settings.region})", version="1.0.0", lifespan=lifespan
    )
    app.state.settings = settings
    app.state.clock = Clock()
    app.state.verifier = TokenVerifier(keys)
    install_error_handlers(app)

    async def database_ready() -> None:
        await ping(app.state.engine)

    app.include_router(ops_router([("database", database_ready)]))
    for router in _feature_routers():
        app.include_router(router)
    instrument(app, service=SERVICE)
    return app
