"""docker-compose.regions.yml: valid against the Compose spec, wired like the local stack."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.settings import unknown_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.regions.yml"
API_APPS = {"global_api.main:create_app", "regional_api.main:create_app", "router.main:create_app"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file (YAML anchors and merge keys resolved)."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads((ROOT / "deploy" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _app(service: dict[str, Any]) -> str | None:
    command = service.get("command") or []
    return next((part for part in command if part in API_APPS), None)


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    _validator().validate(compose)


def test_vendored_schema_rejects_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["router"]["depends_onn"] = ["global-api"]
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(broken)


def test_topology_has_every_role(compose: dict[str, Any]) -> None:
    services = compose["services"]
    apps = {name: _app(s) for name, s in services.items()}
    regional = sorted(n for n, a in apps.items() if a == "regional_api.main:create_app")
    assert regional == ["eu-west-api-1", "eu-west-api-2", "us-east-api-1"]
    assert apps["global-api"] == "global_api.main:create_app"
    assert apps["router"] == "router.main:create_app"
    assert {"global-db", "eu-west-db", "us-east-db", "prometheus"} <= set(services)
    assert services["router"]["ports"] == ["8000:8000"]


def test_apis_have_readiness_healthchecks_and_wait_for_healthy_dependencies(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, service in services.items():
        if _app(service):
            assert "/readyz" in " ".join(service["healthcheck"]["test"]), name
            assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        for dependency, rule in (service.get("depends_on") or {}).items():
            expected = "service_healthy" if "healthcheck" in services[dependency] else None
            if services[dependency].get("restart") == "no":
                expected = "service_completed_successfully"
            assert rule["condition"] == expected, f"{name} -> {dependency}"


def test_each_api_waits_for_its_migration_step(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        app = _app(service)
        if app and app != "router.main:create_app":
            migrate = next(d for d in service["depends_on"] if d.endswith("-migrate"))
            role = "global" if app.startswith("global") else "regional"
            assert services[migrate]["command"] == ["deploy.migrate", role], name
            assert services[migrate]["environment"] == {
                k: v
                for k, v in service["environment"].items()
                if k in services[migrate]["environment"]
            }


def test_environment_names_are_real_settings_fields(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert unknown_settings(service.get("environment") or {}) == [], name


def test_no_secret_is_written_in_the_file() -> None:
    text = COMPOSE.read_text()
    for match in re.finditer(r"^\s*([A-Z_]*PASSWORD[A-Z_]*):\s*(\S+)", text, re.MULTILINE):
        assert match.group(2).startswith("${"), match.group(0)
    assert re.search(r"postgresql://\w+:(?!\$\{)", text) is None


def test_regional_replicas_point_at_their_own_database(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if region := env.get("REGIONAL_REGION"):
            assert (
                f"@{region}-db:5432/cinema_{region.replace('-', '_')}"
                in env["REGIONAL_DATABASE_URL"]
            ), name
            assert name.startswith(region)


def test_router_fallback_map_and_prometheus_name_the_regional_services(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    directory = json.loads((ROOT / "deploy" / "compose" / "directory.json").read_text())
    endpoints = {url for region in directory["regions"] for url in region["endpoints"]}
    regional = {n for n, s in services.items() if _app(s) == "regional_api.main:create_app"}
    assert {re.sub(r"^http://|:8000$", "", url) for url in endpoints} == regional
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target.split(":")[0]
        for job in prometheus["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert {n for n, s in services.items() if _app(s)} <= targets


def test_dockerfile_builds_one_image_with_every_package() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "pip install ." in dockerfile
    for package in ("common", "schemas", "global_api", "regional_api", "router", "deploy"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "USER cinema" in dockerfile
