"""The router's in-memory state (map cache, pools, health) and its FastAPI dependency."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from router.config import RouterSettings
from router.directory.cache import DirectoryCache
from router.proxy.accesslog import AccessLog
from router.proxy.clients import TrustedProxies
from router.upstreams.http1 import Http1Pool
from router.upstreams.pool import Health, Upstreams
from router.upstreams.send import Sender


@dataclass(eq=False)
class RouterState:
    """Everything one router process keeps in memory, shared by the proxy and its own endpoints."""

    settings: RouterSettings
    directory: DirectoryCache
    upstreams: Upstreams
    health: Health
    sender: Sender
    trusted: TrustedProxies
    # The router's own requests to global_api (map, JWKS), never queued behind proxied ones.
    global_client: Http1Pool
    access_log: AccessLog | None = None


def get_state(request: Request) -> RouterState:
    """The state of the router serving this request."""
    state: RouterState = request.app.state.router
    return state


StateDep = Annotated[RouterState, Depends(get_state)]
