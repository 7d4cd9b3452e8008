"""Database errors translated, in this one place, into typed application errors."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from common.errors import AppError, Conflict, ServiceUnavailable, Unprocessable
from schemas.errors import error_body

log = logging.getLogger("global_api.errors")

_CONSTRAINT_ERRORS: dict[str, tuple[type[AppError], str, str]] = {
    "uq_users_email_lower": (Conflict, "email_taken", "an account with this email already exists"),
    "fk_cinemas_region_regions": (Unprocessable, "unknown_region", "no such region"),
    "fk_staff_cinemas_cinema_id_cinemas": (Unprocessable, "unknown_cinema", "no such cinema"),
    "fk_staff_cinemas_user_id_users": (Conflict, "user_gone", "the user no longer exists"),
    "uq_signing_keys_active": (Conflict, "rotation_in_progress", "another key rotation won"),
    "pk_regions": (Conflict, "region_exists", "the region was created concurrently"),
}


def translate_integrity_error(exc: IntegrityError) -> AppError:
    """Map a constraint violation to the application error that explains it."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if constraint in _CONSTRAINT_ERRORS:
        kind, code, detail = _CONSTRAINT_ERRORS[constraint]
        return kind(detail, code=code)
    log.warning("unmapped constraint violation", extra={"fields": {"constraint": constraint}})
    return Conflict("the request conflicts with the current state", code="conflict")


async def _integrity(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntegrityError)
    err = translate_integrity_error(exc)
    return JSONResponse(error_body(err.code, err.detail, **err.extra), status_code=err.status)


async def _data(_: Request, exc: Exception) -> JSONResponse:
    err = Unprocessable("a value is out of range for its field", code="invalid_value")
    return JSONResponse(error_body(err.code, err.detail), status_code=err.status)


async def _operational(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable", extra={"fields": {"error": type(exc).__name__}})
    err = ServiceUnavailable("the directory database is unavailable", code="database_unavailable")
    return JSONResponse(
        error_body(err.code, err.detail), status_code=err.status, headers={"Retry-After": "1"}
    )


def install_db_error_handlers(app: FastAPI) -> None:
    """Render database errors as 4xx/503 error bodies instead of 500s."""
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(DataError, _data)
    app.add_exception_handler(OperationalError, _operational)
    app.add_exception_handler(PoolTimeout, _operational)
