"""The regional API application: `create_app()` builds it, `uvicorn --factory` serves it."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from common.auth import JwksCache, TokenVerifier
from common.db import make_breaker, make_pool, make_sessionmaker, pool_engine
from common.errors import install_error_handlers
from common.heap import long_lived_heap
from common.observability import configure_logging, instrument, ops_router
from common.openapi import publish_contract
from common.probe import ProbeConnection
from common.routing import mount
from common.schema import schema_check
from common.tasks import cancel_all
from regional_api.boxoffice import router as boxoffice
from regional_api.cinemas import router as cinemas
from regional_api.clock import Clock
from regional_api.config import RegionalSettings, settings_from_env
from regional_api.halls import router as halls
from regional_api.movies import router as movies
from regional_api.onsale import router as onsale
from regional_api.onsale.admitter import Admitter
from regional_api.onsale.batches import JoinBatches
from regional_api.onsale.polls import LinePolls
from regional_api.onsale.rooms import WaitingRooms
from regional_api.payments import reconcile
from regional_api.payments import router as payments
from regional_api.payments.remote import HttpProvider
from regional_api.reports import router as reports
from regional_api.reservations import router as reservations
from regional_api.reservations import sweeper
from regional_api.reservations.full_shows import FullShows
from regional_api.shows import router as shows
from regional_api.shows.cache import ShowCache
from regional_api.shows.fastpath import CachedReads
from regional_api.tickets import router as tickets

SERVICE = "regional_api"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Feature routers, mounted in this order.
FEATURE_ROUTERS: tuple[APIRouter, ...] = (
    cinemas.router,
    halls.router,
    movies.router,
    shows.router,
    reservations.router,
    onsale.router,
    payments.router,
    boxoffice.router,
    tickets.router,
    reports.router,
)


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
        # One breaker and one pool for the database: sessions borrow the pool's connections.
        app.state.breaker = breaker = make_breaker(settings.database_url, service=SERVICE)
        app.state.pool = make_pool(
            settings.database_url, service=SERVICE, size=settings.db_pool_size, breaker=breaker
        )
        await app.state.pool.open(wait=False)
        app.state.joins = JoinBatches(app.state.pool)
        app.state.engine = engine = pool_engine(app.state.pool, settings.database_url)
        app.state.sessionmaker = make_sessionmaker(engine)
        # The database is back after an outage: replace the pool's broken idle connections.
        app.state.probe = ProbeConnection(
            settings.database_url,
            service=SERVICE,
            on_recovery=app.state.pool.check_soon,
            breaker=breaker,
        )
        admitter = Admitter(
            app.state.pool,
            app.state.clock,
            in_flight=settings.onsale_admitted_in_flight,
            in_flight_seconds=settings.onsale_in_flight_seconds,
        )
        tasks = [
            asyncio.create_task(sweeper.run(app), name="sweeper"),
            asyncio.create_task(reconcile.run_forever(app), name="payment-reconciler"),
            asyncio.create_task(rooms.refresh_forever(app.state.pool), name="waiting-rooms"),
            asyncio.create_task(admitter.run_forever(), name="admitter"),
        ]
        if jwks is None:
            tasks.append(asyncio.create_task(keys.refresh_forever(settings.jwks_refresh_seconds)))
        try:
            with long_lived_heap():
                yield
        finally:
            await breaker.stop()  # releases the pool's reconnects waiting for it to close
            await cancel_all(tasks)
            if isinstance(app.state.payment_provider, HttpProvider):
                await app.state.payment_provider.aclose()
            await app.state.probe.close()
            await app.state.pool.close()
            await engine.dispose()

    configure_logging(f"{SERVICE}:{settings.region}", settings.log_level)
    # Swagger UI and ReDoc from the fastapi-offline package: the docs render without Internet.
    app = FastAPIOffline(
        title=f"Cinema regional API ({settings.region})", version="1.0.0", lifespan=lifespan
    )
    app.state.settings = settings
    app.state.clock = Clock()
    app.state.payment_provider = settings.payment_provider()
    app.state.show_cache = cache = ShowCache(
        settings.show_cache_max_age_ms / 1000, settings.show_cache_max_entries
    )
    # One signal for a show's availability changing here: the hint and the cache both hear it.
    app.state.full_shows = FullShows(settings.full_show_hint_seconds, on_change=cache.forget)
    app.state.waiting_rooms = rooms = WaitingRooms(in_flight_cap=settings.onsale_admitted_in_flight)
    app.state.verifier = TokenVerifier(keys)
    install_error_handlers(app)
    publish_contract(app)

    async def database_ready() -> None:
        await app.state.probe.ping()

    schema_ready = schema_check(lambda: app.state.engine, MIGRATIONS)
    ops = ops_router([("database", database_ready), ("schema", schema_ready)])
    mount(app, ops, *FEATURE_ROUTERS)
    # Inside the observability and admission middleware that instrument() adds around it.
    app.add_middleware(CachedReads)
    instrument(
        app, service=SERVICE, admission=settings.admission(), access_log=settings.access_log()
    )
    # Outermost: a poll from memory costs 44 us of CPU here, 283 us inside the two above (route
    # lookup and access log), 511 us through the endpoint (regional_api/onsale/polls.py).
    app.add_middleware(LinePolls)
    return app
