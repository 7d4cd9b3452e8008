"""Schema-driven fuzzing of global_api and regional_api (live servers, real PostgreSQL, admin)."""

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from global_api.config import GlobalSettings
from global_api.main import create_app as create_global
from harness.live import live_server
from harness.tokens import TestIssuer
from regional_api.config import RegionalSettings
from regional_api.main import create_app as create_regional
from schemas.auth import Role
from tests.global_api.support import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.regional_api.factories import grid_rows, seed_show
from tests.reliability.kit import size
from tests.support.db import DatabaseFactory

CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.content_type_conformance,
]
FUZZ = settings(
    max_examples=size("fuzz_examples", 5),
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(scope="module")
def regional_target(
    regional_databases: dict[str, DatabaseFactory], issuer: TestIssuer
) -> Iterator[tuple[str, dict[str, str]]]:
    """A live regional app with one seeded show; admin headers."""
    with regional_databases["eu-west"].fresh("fuzz") as dsn:
        seed_show(dsn, rows=grid_rows())
        settings = RegionalSettings(region="eu-west", database_url=dsn, log_level="ERROR")
        with live_server(create_regional(settings, jwks=issuer.jwks)) as url:
            yield url, issuer.headers(sub="usr-fuzz-admin", role=Role.admin)


@pytest.fixture(scope="module")
def global_target(global_databases: DatabaseFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A live global app with a bootstrap admin, logged in."""
    with global_databases.fresh("fuzz") as dsn:
        yield from _global_target(dsn)


def _global_target(dsn: str) -> Iterator[tuple[str, dict[str, str]]]:
    app = create_global(
        GlobalSettings(
            database_url=dsn, argon2_time_cost=1, argon2_memory_cost=8, argon2_parallelism=1,
            bootstrap_admin_email=ADMIN_EMAIL, bootstrap_admin_password=ADMIN_PASSWORD,
            login_failure_threshold=1000, log_level="ERROR",
        )
    )  # fmt: skip
    with live_server(app) as url:
        login = httpx.post(
            f"{url}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        token = login.json()["access_token"]
        yield url, {"Authorization": f"Bearer {token}"}


def _fuzz(url: str, headers: dict[str, str]) -> list[str]:
    """Fuzz every operation of the served OpenAPI document; return what failed."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=30)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    return failures


@pytest.mark.slow
def test_regional_api_fuzz(regional_target: tuple[str, dict[str, str]]) -> None:
    """No 5xx and schema-conformant answers for generated requests, as an admin."""
    failures = _fuzz(*regional_target)
    assert failures == [], "\n\n".join(failures)


@pytest.mark.slow
def test_global_api_fuzz(global_target: tuple[str, dict[str, str]]) -> None:
    """No 5xx and schema-conformant answers for generated requests, as an admin."""
    failures = _fuzz(*global_target)
    assert failures == [], "\n\n".join(failures)


def test_openapi_documents_the_error_body_sent_for_422(issuer: TestIssuer) -> None:
    """The published 422 schema is the shared error body (found by fuzzing: it was FastAPI's)."""
    for app in (
        create_regional(RegionalSettings(), jwks=issuer.jwks),
        create_global(GlobalSettings()),
    ):
        component = app.openapi()["components"]["schemas"]["HTTPValidationError"]
        assert component["required"] == ["error", "detail"]
        assert component["properties"]["detail"] == {"type": "string"}
