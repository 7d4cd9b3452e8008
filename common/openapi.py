"""The OpenAPI document as we really serve it: our error body and bearer-token security."""

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from common.auth import BEARER, authentication_of

_ERROR_BODY = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}


def _authentication(dependant: Dependant) -> set[bool]:
    """Whether each token-reading dependency under `dependant` requires a token."""
    required = authentication_of(dependant.call)
    found = set() if required is None else {required}
    for sub in dependant.dependencies:
        found |= _authentication(sub)
    return found


def _security(route: APIRoute) -> list[dict[str, list[str]]] | None:
    """The route's OpenAPI security requirement: bearer, optional bearer, or none."""
    found = _authentication(route.dependant)
    if not found:
        return None
    return [{BEARER: []}] if True in found else [{}, {BEARER: []}]


def document_security(*routers: APIRouter) -> None:
    """Have each operation of `routers` document whether it takes a bearer token."""
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and (security := _security(route)) is not None:
                route.openapi_extra = {**(route.openapi_extra or {}), "security": security}


def publish_contract(app: FastAPI) -> None:
    """Document the 422 body we send and the bearer-token security scheme."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        components = document.setdefault("components", {})
        schemas = components.get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = _ERROR_BODY
        components.setdefault("securitySchemes", {})[BEARER] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
        return document

    app.openapi = openapi  # type: ignore[method-assign]
