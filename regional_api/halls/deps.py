"""Hall dependencies: the path's hall (404 otherwise) and who may change it."""

from typing import Annotated

from fastapi import Depends

from common.auth import Claims
from common.errors import NotFound
from regional_api.cinemas.deps import require_manager
from regional_api.cinemas.service import require_local_id
from regional_api.config import SettingsDep
from regional_api.db import SessionDep
from regional_api.halls import service
from regional_api.halls.models import Hall


async def resolve_hall(hall_id: str, session: SessionDep, settings: SettingsDep) -> Hall:
    """The hall named in the path."""
    require_local_id(hall_id, kind="hall", region=settings.region)
    hall = await service.get_hall(session, hall_id=hall_id)
    if hall is None:
        raise NotFound(f"no hall {hall_id}", code="hall_not_found")
    return hall


HallDep = Annotated[Hall, Depends(resolve_hall)]


async def managed_hall(claims: Claims, hall: HallDep) -> Hall:
    """The path's hall, if the caller is an admin or staff of its cinema (401/403 otherwise)."""
    require_manager(claims, hall.cinema_id)
    return hall


ManagedHall = Annotated[Hall, Depends(managed_hall)]
