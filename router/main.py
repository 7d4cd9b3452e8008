"""The router application: `create_app()` builds it, `uvicorn --factory` serves it."""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import Receive, Scope, Send

from common.auth import Fetch, JwksCache, TokenVerifier
from common.errors import ServiceUnavailable, install_error_handlers
from common.heap import long_lived_heap
from common.observability import configure_logging, instrument, ops_router
from common.openapi import publish_contract
from common.routing import mount
from common.tasks import cancel_all
from router.admin.router import router as admin_router
from router.config import JWKS_PATH, RouterSettings, settings_from_env
from router.deps import RouterState
from router.directory.cache import DirectoryCache
from router.fanout.router import router as fanout_router
from router.proxy import door
from router.proxy.accesslog import AccessLog
from router.proxy.app import ProxyApp
from router.proxy.clients import TrustedProxies
from router.proxy.fastpath import FastPath
from router.proxy.resolve import answered_by_router
from router.upstreams.http1 import Http1Pool
from router.upstreams.pool import Health, Upstreams
from router.upstreams.probes import probe_all, probe_forever
from router.upstreams.send import Sender

SERVICE = "router"
JWKS_FETCH_TIMEOUT = 2.0  # seconds

# The frontends (docs/frontends.md), served as files under /app/.
STATIC_DIR = Path(__file__).resolve().parent / "static"


class RouterApp:
    """Top-level ASGI app: the router's own endpoints on FastAPI, all else on the raw proxy.

    `fast` is the fast path that `router.proxy.protocol.RouterProtocol` takes GETs on, `door`
    the bounds it holds client connections to.
    """

    def __init__(self, api: FastAPI, proxy: ProxyApp, state: RouterState) -> None:
        self.api = api
        self.proxy = proxy
        self.state = state
        self.fast = FastPath(proxy)
        self.door = door.FrontDoor(state.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not answered_by_router(scope["path"]):
            await self.proxy(scope, receive, send)
            return
        await self.api(scope, receive, send)


def _build_state(settings: RouterSettings) -> RouterState:
    upstreams = Upstreams(settings)
    health = Health(settings)
    directory = DirectoryCache(
        map_path="/directory/map",
        fetch_timeout=settings.map_fetch_timeout_seconds,
        miss_refresh_min_seconds=settings.map_miss_refresh_min_seconds,
        on_change=upstreams.sync,
    )
    return RouterState(
        settings=settings,
        directory=directory,
        upstreams=upstreams,
        health=health,
        sender=Sender(settings, health),
        trusted=TrustedProxies(settings.trusted_proxies),
        global_client=Http1Pool(
            settings.global_api_url,
            limit=2,
            keepalive=settings.upstream_keepalive_seconds,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.map_fetch_timeout_seconds,
            tls=upstreams.tls,
        ),
        access_log=AccessLog(SERVICE) if settings.access_log else None,
    )


def _jwks_fetch(client: Http1Pool) -> Fetch:
    """JWKS fetches through the router's own client to global_api."""

    async def fetch(_url: str) -> bytes:  # settings.jwks_url, that is JWKS_PATH on `client`
        async with asyncio.timeout(JWKS_FETCH_TIMEOUT):
            answer = await client.get(JWKS_PATH)
        if answer.status != 200:
            raise ConnectionError(f"global_api answered the JWKS fetch with {answer.status}")
        return answer.body

    return fetch


@asynccontextmanager
async def _running(state: RouterState, keys: JwksCache, pin_keys: bool) -> AsyncIterator[None]:
    settings = state.settings
    state.upstreams.start()
    await state.directory.start(state.global_client, settings.static_config_file)
    await probe_all(state.upstreams, state.health, probe_timeout=settings.probe_timeout_seconds)
    jobs: list[Coroutine[Any, Any, None]] = [
        probe_forever(
            state.upstreams,
            state.health,
            interval=settings.probe_interval_seconds,
            probe_timeout=settings.probe_timeout_seconds,
        ),
        state.directory.refresh_forever(settings.map_refresh_seconds),
    ]
    if not pin_keys:
        jobs.append(keys.refresh_forever(settings.jwks_refresh_seconds))
    if state.access_log is not None:
        jobs.append(state.access_log.flush_forever())
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        with long_lived_heap():
            yield
    finally:
        await cancel_all(tasks)
        await state.global_client.close()
        await state.upstreams.close()


def _build_api(state: RouterState, keys: JwksCache, *, pin_keys: bool) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with _running(state, keys, pin_keys=pin_keys):
            yield

    # Swagger UI and ReDoc from the fastapi-offline package: the docs render without Internet.
    api = FastAPIOffline(
        title="Cinema router",
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/router/docs",
        openapi_url="/router/openapi.json",
        redoc_url="/router/redoc",
        static_url="/router/docs-assets",
    )
    api.state.router = state
    api.state.verifier = TokenVerifier(keys)
    install_error_handlers(api, database=False)
    publish_contract(api)

    async def directory_loaded() -> None:
        if state.directory.map is None:
            raise ServiceUnavailable("no directory map yet")

    mount(api, ops_router([("directory_map", directory_loaded)]), admin_router, fanout_router)
    if STATIC_DIR.is_dir():
        api.mount("/app", StaticFiles(directory=STATIC_DIR, html=True), name="frontends")
    instrument(api, service=SERVICE)
    return api


def create_app(
    settings: RouterSettings | None = None, *, jwks: dict[str, Any] | None = None
) -> RouterApp:
    """Build the router; `jwks` pins the trusted keys (tests), else they are fetched."""
    settings = settings or settings_from_env()
    configure_logging(SERVICE, settings.log_level)
    state = _build_state(settings)
    keys = JwksCache(
        None if jwks else settings.jwks_url,
        jwks=jwks,
        cache_file=settings.jwks_cache_file,
        min_refetch_seconds=30.0,
        fetch=_jwks_fetch(state.global_client),
    )

    api = _build_api(state, keys, pin_keys=jwks is not None)
    proxy = ProxyApp(
        settings=settings,
        directory=state.directory,
        upstreams=state.upstreams,
        sender=state.sender,
        trusted=state.trusted,
        access_log=state.access_log,
        verifier=api.state.verifier,  # joins of a show read sold out (router.proxy.soldout)
    )
    return RouterApp(api, proxy, state)
