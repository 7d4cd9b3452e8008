"""Endpoints as the app's own routes, each documenting whether it takes a bearer token.

A hot endpoint may also register a lean handler (`lean`): a request whose JSON body is valid
goes to it straight, without FastAPI's per-request dependency resolution; every other request
(no or another content type, a body that does not parse or validate, dependency overrides set)
takes FastAPI's handler, so its answer, error body and error precedence are FastAPI's. An
endpoint that takes no body (`lean_bodiless`) has every request served by its lean handler, but
with dependency overrides set.
"""

import copy
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, request_response
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.openapi import document_security

M = TypeVar("M", bound=BaseModel)
LeanHandler = Callable[[Request, Any], Awaitable[Response]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

# endpoint -> (its body model, None if it takes none; the handler that serves a valid body
# without FastAPI's resolution)
_LEAN: dict[object, tuple[type[BaseModel] | None, LeanHandler]] = {}
_JSON = b"application/json"


def lean(
    model: type[M], handler: Callable[[Request, M], Awaitable[Response]]
) -> Callable[[Endpoint], Endpoint]:
    """Serve a valid `model` body of this endpoint with `handler` (see the module docstring)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        _LEAN[endpoint] = (model, handler)
        return endpoint

    return mark


def lean_bodiless(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Endpoint], Endpoint]:
    """Serve every request of this endpoint, which takes no body, with `handler`."""

    async def serve(request: Request, _: None) -> Response:
        return await handler(request)

    def mark(endpoint: Endpoint) -> Endpoint:
        _LEAN[endpoint] = (None, serve)
        return endpoint

    return mark


def mount(app: FastAPI, *routers: APIRouter) -> None:
    """Serve the routers' endpoints as routes of `app` itself, each with its handler built once."""
    # `include_router` keeps a router as a lazy wrapper: FastAPI 0.141 then matches through it
    # and rebuilds the endpoint's handler on every request, 13 % of a hold's CPU (profile in
    # docs/benchmarks/floor.md); these routes are the same endpoints, answering as the app's.
    document_security(*routers)
    hot: list[APIRoute] = []
    count = len(app.router.routes)
    for router in routers:
        for route in router.routes:
            assert isinstance(route, APIRoute)  # our routers hold endpoints only
            own = copy.copy(route)
            own.dependency_overrides_provider = app  # as `include_router` gives them
            own.app = request_response(own.get_route_handler())
            if (registered := _LEAN.get(route.endpoint)) is not None:
                own.app = _lean_app(app, own.app, *registered)
                hot.append(own)
            app.router.routes.append(own)
    _hot_first(app, hot, len(app.router.routes) - count)


def _hot_first(app: FastAPI, hot: list[APIRoute], added: int) -> None:
    """Match the lean routes first; the OpenAPI document keeps the declared order.

    The router tries routes in turn (each try a regex and a few calls: a hold was the 26th
    route, docs/benchmarks/floor.md). Moving a route ahead changes no answer when no route it
    passes can match its requests, which is checked here for every moved route.
    """
    routes = app.router.routes
    declared: list[str] | None = getattr(app.state, "declared_paths", None)
    if declared is not None:  # routes were moved before: these `added` are the new ones
        declared += [getattr(route, "path", "") for route in routes[len(routes) - added :]]
    if not hot:
        return
    if declared is None:
        declared = app.state.declared_paths = [getattr(route, "path", "") for route in routes]
        _document_in_order(app, declared)
    for route in hot:
        for earlier in routes[: routes.index(route)]:
            if _overlap(route, earlier):
                passed = getattr(earlier, "path", earlier)
                raise ValueError(f"{route.path} cannot be matched before {passed}")
    routes[:] = hot + [route for route in routes if route not in hot]


def _document_in_order(app: FastAPI, declared: list[str]) -> None:
    """Have the OpenAPI document list its paths in `declared` order, whatever the routes'."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        paths = document.get("paths", {})
        document["paths"] = {path: paths[path] for path in declared if path in paths} | paths
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _overlap(route: APIRoute, other: BaseRoute) -> bool:
    """Whether a request could match both `route` and `other` (by method and a sample path)."""
    methods = getattr(other, "methods", None)
    if methods is not None and not (methods & (route.methods or set())):
        return False
    path = getattr(other, "path", None)
    if not isinstance(path, str):
        return True  # unknown kind of route: keep the declared order
    regex = getattr(other, "path_regex", None)
    return bool(
        (regex is not None and regex.match(_sample(route.path)))
        or route.path_regex.match(_sample(path))
    )


def _sample(template: str) -> str:
    """A path the template matches: each `{parameter}` replaced with one segment."""
    return re.sub(r"\{[^}]*\}", "x", template)


def _lean_app(
    app: FastAPI, full: ASGIApp, model: type[BaseModel] | None, handler: LeanHandler
) -> ASGIApp:
    """FastAPI's handler `full`, with the lean `handler` in front for valid JSON bodies."""
    if model is None:
        return _bodiless_app(app, full, handler)

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        body, replay = await _read_body(receive)
        parsed = None if app.dependency_overrides else _valid_body(scope, body, model)
        if parsed is None:
            await full(scope, replay, send)
            return
        # An error propagates to Starlette's ExceptionMiddleware, which answers it with the
        # app's exception handlers, as for any route.
        response = await handler(Request(scope, replay, send), parsed)
        await response(scope, replay, send)

    return serve


def _bodiless_app(app: FastAPI, full: ASGIApp, handler: LeanHandler) -> ASGIApp:
    """FastAPI's handler `full` for a bodiless endpoint, the lean `handler` in front."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if app.dependency_overrides:
            await full(scope, receive, send)
            return
        # Any body is left unread, as FastAPI leaves it for an endpoint that takes none.
        response = await handler(Request(scope, receive, send), None)
        await response(scope, receive, send)

    return serve


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that gives it again before the rest."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # a disconnect: FastAPI's handler meets it too
            first: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    else:
        first = []
    body = b"".join(chunks)
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            if first:
                return first[0]
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _valid_body(scope: Scope, body: bytes, model: type[M]) -> M | None:
    """The body as `model` when it is plain `application/json` that validates, else None."""
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if content_type != _JSON or not body:
        return None
    try:
        # What FastAPI does with a JSON body: `json.loads`, then the model in Python mode.
        return model.model_validate(json.loads(body), from_attributes=True)
    except Exception:  # bad JSON or UTF-8, too deep, invalid: FastAPI answers it
        return None
