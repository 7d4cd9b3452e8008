"""Endpoints as the app's own routes, each documenting whether it takes a bearer token."""

import copy

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, request_response

from common.openapi import document_security


def mount(app: FastAPI, *routers: APIRouter) -> None:
    """Serve the routers' endpoints as routes of `app` itself, each with its handler built once."""
    # `include_router` keeps a router as a lazy wrapper: FastAPI 0.141 then matches through it
    # and rebuilds the endpoint's handler on every request, 13 % of a hold's CPU (profile in
    # docs/benchmarks/floor.md); these routes are the same endpoints, answering as the app's.
    document_security(*routers)
    for router in routers:
        for route in router.routes:
            assert isinstance(route, APIRoute)  # our routers hold endpoints only
            own = copy.copy(route)
            own.dependency_overrides_provider = app  # as `include_router` gives them
            own.app = request_response(own.get_route_handler())
            app.router.routes.append(own)
