"""Import every ORM module so the metadata is complete (for Alembic and schema checks)."""

import importlib

MODEL_MODULES: tuple[str, ...] = (
    "global_api.users.models",
    "global_api.directory.models",
    "global_api.tokens.models",
    "global_api.auth.models",
)


def import_all_models() -> None:
    """Import every model module once."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
