"""Count FastAPI's per-request dependency resolutions: a lean handler (common.routing) does none."""

from typing import Any

import fastapi.routing
import pytest


def counted_resolutions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests FastAPI resolves dependencies for, from now on."""
    resolved: list[str] = []
    solve = fastapi.routing.solve_dependencies  # type: ignore[attr-defined]

    async def counted(**kwargs: Any) -> Any:
        resolved.append(kwargs["request"].url.path)
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return resolved
