"""The environment variable names each service really reads (from its settings class)."""

from collections.abc import Mapping

from pydantic_settings import BaseSettings

from global_api.config import GlobalSettings
from regional_api.config import RegionalSettings
from router.config import RouterSettings

SETTINGS: dict[str, type[BaseSettings]] = {
    "GLOBAL_": GlobalSettings,
    "REGIONAL_": RegionalSettings,
    "ROUTER_": RouterSettings,
}


def known_env_names() -> set[str]:
    """Every `PREFIX_FIELD` name the three settings classes accept."""
    names = set()
    for prefix, cls in SETTINGS.items():
        assert cls.model_config.get("env_prefix") == prefix
        names |= {prefix + field.upper() for field in cls.model_fields}
    return names


def unknown_settings(env: Mapping[str, object] | list[str]) -> list[str]:
    """Names with a service prefix that no settings class has (typos, stale names)."""
    keys = [item.split("=", 1)[0] for item in env] if isinstance(env, list) else list(env)
    known = known_env_names()
    return [k for k in keys if k.startswith(tuple(SETTINGS)) and k not in known]
