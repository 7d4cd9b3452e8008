"""Import every ORM module so the metadata is complete (for Alembic and schema checks)."""

import importlib

MODEL_MODULES = (
    "regional_api.cinemas.models",
    "regional_api.halls.models",
    "regional_api.movies.models",
    "regional_api.shows.models",
    "regional_api.reservations.models",
    "regional_api.payments.models",
    "regional_api.idempotency.models",
)


def import_all_models() -> None:
    """Import every model module once."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
