"""The global API application: `create_app()` builds it, `uvicorn --factory` serves it."""

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from common.auth import TokenVerifier
from common.db import make_breaker, make_engine, make_sessionmaker, ping
from common.errors import install_error_handlers
from common.observability import configure_logging, instrument, ops_router
from common.openapi import publish_contract
from common.routing import mount
from common.schema import schema_check
from common.tasks import cancel_all
from global_api.admin.router import router as admin_router
from global_api.auth import housekeeping
from global_api.auth.router import router as auth_router
from global_api.config import GlobalSettings, settings_from_env
from global_api.directory.cache import MapCache
from global_api.directory.router import router as directory_router
from global_api.tokens.jwks import DatabaseJwks
from global_api.tokens.keys import KeyRing, ensure_active_key
from global_api.tokens.router import retired_grace_seconds
from global_api.tokens.router import router as tokens_router
from global_api.users.passwords import make_hasher
from global_api.users.router import router as users_router
from global_api.users.service import admin_exists, ensure_admin

SERVICE = "global_api"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

log = logging.getLogger("global_api")


async def _prepare_database(
    maker: async_sessionmaker[AsyncSession], settings: GlobalSettings, app: FastAPI
) -> None:
    # The database may still be starting (compose, k8s): retry briefly before giving up.
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(OperationalError),
        stop=stop_after_delay(settings.startup_db_wait_seconds),
        wait=wait_fixed(0.5),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await _install_key_and_admin(maker, settings, app)


async def _install_key_and_admin(
    maker: async_sessionmaker[AsyncSession], settings: GlobalSettings, app: FastAPI
) -> None:
    async with maker() as session, session.begin():
        kid = await ensure_active_key(session)
        email, password = settings.bootstrap_admin_email, settings.bootstrap_admin_password
        if email and password and not await admin_exists(session):
            await ensure_admin(
                session, email=email, password=password.get_secret_value(), hasher=app.state.hasher
            )
    log.info("signing key ready", extra={"fields": {"kid": kid}})


def _lifespan(
    settings: GlobalSettings, jwks: DatabaseJwks
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.breaker = breaker = make_breaker(settings.database_url, service=SERVICE)
        engine = make_engine(
            settings.database_url,
            service=SERVICE,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            breaker=breaker,
        )
        app.state.engine = engine
        app.state.sessionmaker = jwks.sessionmaker = make_sessionmaker(engine)
        task: asyncio.Task[None] | None = None
        try:
            await _prepare_database(app.state.sessionmaker, settings, app)
            await jwks.reload()
            task = asyncio.create_task(housekeeping.run(app.state.sessionmaker, settings, jwks))
            yield
        finally:
            await cancel_all([task])
            await breaker.stop()
            await engine.dispose()

    return lifespan


def create_app(settings: GlobalSettings | None = None) -> FastAPI:
    """Build the global API (users, tokens, cinema directory)."""
    settings = settings or settings_from_env()
    jwks = DatabaseJwks(retired_grace_seconds=retired_grace_seconds(settings))
    configure_logging(SERVICE, settings.log_level)
    # Swagger UI and ReDoc from the fastapi-offline package: the docs render without Internet.
    app = FastAPIOffline(
        title="Cinema global API", version="1.0.0", lifespan=_lifespan(settings, jwks)
    )
    app.state.settings = settings
    app.state.hasher = hasher = make_hasher(settings)
    app.state.dummy_hash = hasher.hash(secrets.token_urlsafe(16))
    app.state.keyring = KeyRing()
    app.state.map_cache = MapCache()
    app.state.verifier = TokenVerifier(jwks)
    install_error_handlers(app)
    publish_contract(app)

    async def database_ready() -> None:
        breaker = app.state.breaker
        if breaker.is_open:  # unready at once: the router stops sending
            raise breaker.error()
        await ping(app.state.engine)

    schema_ready = schema_check(lambda: app.state.engine, MIGRATIONS)
    ops = ops_router([("database", database_ready), ("schema", schema_ready)])
    # /users/me before /users/{user_id}: the first match wins.
    routers = (auth_router, tokens_router, users_router, admin_router, directory_router)
    mount(app, ops, *routers)
    instrument(app, service=SERVICE, access_log=settings.access_log())
    return app
