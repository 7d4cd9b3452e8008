"""The error body every service returns for every non-2xx answer."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    """`{"error": "<code>", "detail": "...", ...extra fields}`."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """Build the error body as a plain dict (extra keys are merged in)."""
    return {"error": code, "detail": detail, **extra}
