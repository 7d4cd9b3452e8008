"""Typed application errors and the handlers that render them as the `schemas` error body."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.errors import error_body

log = logging.getLogger("errors")


class AppError(Exception):
    """An error with a machine-readable code, a human detail and an HTTP status."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers
        self.extra = extra


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"

    def __init__(self, detail: str = "authentication required", **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(AppError):
    status = 403
    code = "forbidden"

    def __init__(self, detail: str = "not allowed for this role or resource", **extra: Any) -> None:
        super().__init__(detail, **extra)


class Unprocessable(AppError):
    status = 422
    code = "validation_error"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class ServiceUnavailable(AppError):
    status = 503
    code = "unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database is unreachable (its breaker is open): retry after `retry_after` seconds."""

    code = "database_unavailable"

    def __init__(self, *, retry_after: int = 1) -> None:
        super().__init__(
            "the database is unreachable; retry", headers={"Retry-After": str(retry_after)}
        )


# Every constraint whose violation a request can cause, and what it tells the client. A service
# that adds context (which movie has the external id, which show overlaps) looks its error up
# here with `constraint_error` and adds fields; any other violation is rendered by the handler.
_CONSTRAINTS: dict[str, tuple[type[AppError], str, str]] = {
    # global directory
    "uq_users_email_lower": (Conflict, "email_taken", "an account with this email already exists"),
    "fk_cinemas_region_regions": (Unprocessable, "unknown_region", "no such region"),
    "fk_staff_cinemas_cinema_id_cinemas": (Unprocessable, "unknown_cinema", "no such cinema"),
    "fk_staff_cinemas_user_id_users": (Conflict, "user_gone", "the user no longer exists"),
    "uq_signing_keys_active": (Conflict, "rotation_in_progress", "another key rotation won"),
    "pk_regions": (Conflict, "region_exists", "the region was created concurrently"),
    # regional catalog and payments
    "movies_external_id_key": (Conflict, "movie_exists", "a movie with this external id exists"),
    "uq_halls_cinema_id_name": (Conflict, "hall_name_taken", "this cinema has a hall of this name"),
    "ex_shows_hall_overlap": (
        Conflict,
        "show_overlap",
        "the hall already has a show at that time (including cleaning)",
    ),
    "uq_payments_open_per_reservation": (
        Conflict,
        "payment_in_progress",
        "a payment of this reservation is in progress",
    ),
}


def violation(exc: Exception) -> tuple[str | None, str | None]:
    """The SQLSTATE and constraint name behind a DBAPI error (e.g. an IntegrityError), if any."""
    orig = getattr(exc, "orig", exc)
    diag = getattr(orig, "diag", None)
    return getattr(orig, "sqlstate", None), getattr(diag, "constraint_name", None)


def constraint_error(exc: Exception) -> AppError:
    """The application error that explains a constraint violation (409 `conflict` if unknown)."""
    constraint = violation(exc)[1]
    if constraint in _CONSTRAINTS:
        kind, code, detail = _CONSTRAINTS[constraint]
        return kind(detail, code=code)
    log.warning("unmapped constraint violation", extra={"fields": {"constraint": constraint}})
    return Conflict("the request conflicts with the current state")


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


def _jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Pydantic errors can hold raw bytes or exceptions in "input"/"ctx": keep only printable parts.
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return _json(exc.status, error_body(exc.code, exc.detail, **exc.extra), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _jsonable_errors(exc)
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    loc, msg = ".".join(first["loc"]), str(first["msg"])
    detail = f"{loc}: {msg}" if loc else msg
    return _json(422, error_body("validation_error", detail, errors=errors))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return _json(exc.status_code, error_body(code, str(exc.detail)), headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json(500, error_body("internal", "internal error"))


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    return await _app_error(request, constraint_error(exc))


async def _data_error(request: Request, _: Exception) -> JSONResponse:
    error = Unprocessable("a value is out of range for its field", code="invalid_value")
    return await _app_error(request, error)


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    # Pool exhausted, lock or statement timeout, deadlock, lost connection: transient, so the
    # client (or the router) should retry; the transaction was rolled back.
    log.warning(
        "database busy or unreachable on %s %s: %s",
        request.method,
        request.url.path,
        type(getattr(exc, "orig", exc)).__name__,
    )
    body = error_body("database_unavailable", "the database is busy or unreachable; retry")
    return _json(503, body, {"Retry-After": "1"})


def install_error_handlers(app: FastAPI, *, database: bool = True) -> None:
    """Render every error, expected or not, as the `schemas` error body."""
    if database:
        _install_database_handlers(app)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def _install_database_handlers(app: FastAPI) -> None:
    # Imported here: a service without a database (the router) would carry ~20 MB of drivers.
    from psycopg import DataError as DriverDataError
    from psycopg import IntegrityError as DriverIntegrityError
    from psycopg import OperationalError as DriverOperationalError
    from psycopg_pool import PoolTimeout as DriverPoolTimeout
    from psycopg_pool import TooManyRequests as PoolQueueFull
    from sqlalchemy.exc import DataError, IntegrityError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    for transient in (
        PoolTimeout,
        OperationalError,
        DriverPoolTimeout,
        PoolQueueFull,
        DriverOperationalError,
    ):
        app.add_exception_handler(transient, _database_busy)
    for integrity in (IntegrityError, DriverIntegrityError):
        app.add_exception_handler(integrity, _integrity_error)
    for data in (DataError, DriverDataError):
        app.add_exception_handler(data, _data_error)
