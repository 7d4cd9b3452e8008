"""Liveness and readiness answers."""

from pydantic import BaseModel


class Health(BaseModel):
    """`/healthz` and `/readyz` body."""

    status: str
    checks: dict[str, str] = {}
