"""The observability middleware: sampled access log, request ids, metrics by route template."""

import asyncio
import io
import json
import logging
import re

import httpx
import pytest
from fastapi import FastAPI, Response
from prometheus_client import REGISTRY

from common.observability import AccessLog, JsonFormatter, instrument, log_fields, ops_router
from global_api.config import GlobalSettings
from regional_api.config import RegionalSettings
from regional_api.main import create_app


def _app(service: str, policy: AccessLog) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> Response:
        return Response(status_code=503)

    app.include_router(ops_router([]))
    instrument(app, service=service, access_log=policy)
    return app


def _get(app: FastAPI, *paths: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [await http.get(path, headers=headers) for path in paths]

    return asyncio.run(scenario())


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.fields for r in caplog.records if r.name == "access"]  # type: ignore[attr-defined]


def test_one_ordinary_answer_in_n_is_logged_and_every_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="access")
    app = _app("obs-sample", AccessLog(sample_every=3, slow_ms=60_000))
    _get(app, *[f"/items/{n}" for n in range(7)], "/boom", "/healthz")
    lines = _lines(caplog)
    ordinary = [line for line in lines if line["route"] == "/items/{item_id}"]
    assert [line["path"] for line in ordinary] == ["/items/2", "/items/5"]
    assert all(line["sampled"] == 3 and line["status"] == 200 for line in ordinary)
    errors = [line for line in lines if line["route"] == "/boom"]
    assert [(line["status"], "sampled" in line) for line in errors] == [(503, False)]
    assert not [line for line in lines if line["route"] == "/healthz"]  # a quiet route


def test_answers_slower_than_the_threshold_are_always_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="access")
    app = _app("obs-slow", AccessLog(sample_every=1000, slow_ms=0))  # every answer is "slow"
    _get(app, "/items/a", "/items/b", "/healthz")
    lines = _lines(caplog)
    assert [line["path"] for line in lines] == ["/items/a", "/items/b", "/healthz"]
    assert not [line for line in lines if "sampled" in line]


def test_sample_zero_logs_only_errors_and_every_answer_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="access")
    app = _app("obs-quiet", AccessLog(sample_every=0, slow_ms=10_000))
    _get(app, *[f"/items/{n}" for n in range(5)], "/boom")
    assert [line["route"] for line in _lines(caplog)] == ["/boom"]
    labels = {"service": "obs-quiet", "method": "GET", "route": "/items/{item_id}"}
    counted = REGISTRY.get_sample_value("http_requests_total", labels | {"status": "200"})
    assert counted == 5
    timed = REGISTRY.get_sample_value("http_request_duration_seconds_count", labels)
    assert timed == 5


def test_a_request_id_is_echoed_or_made_unique() -> None:
    app = _app("obs-ids", AccessLog())
    echoed = _get(app, "/items/a", headers={"X-Request-Id": "abc-123"})[0]
    assert echoed.headers["x-request-id"] == "abc-123"
    made = [response.headers["x-request-id"] for response in _get(app, "/items/a", "/items/b")]
    assert len(set(made)) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made)


def test_the_services_take_the_policy_from_their_settings() -> None:
    assert RegionalSettings().access_log() == AccessLog(sample_every=100, slow_ms=500.0)
    assert GlobalSettings(access_log_sample=1).access_log() == AccessLog(1, 500.0)
    settings = RegionalSettings(access_log_sample=7, access_log_slow_ms=80)
    app = create_app(settings, jwks={"keys": []})
    observability = next(
        m
        for m in app.user_middleware
        if getattr(m.cls, "__name__", "") == "ObservabilityMiddleware"
    )
    assert observability.kwargs["access_log"] == AccessLog(7, 80.0)


def test_a_fields_line_is_the_line_logger_info_writes() -> None:
    """`log_fields` skips the caller lookup, not a field: the JSON line is `Logger.info`'s."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("svc"))
    log = logging.getLogger("test.fields")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    fields = {"method": "POST", "status": 201, "ms": 612.5, "reason": None}
    try:
        log.info("request", extra={"fields": fields})
        log_fields(log, "request", fields)
        log.setLevel(logging.WARNING)
        log_fields(log, "request", fields)  # below the logger's level: nothing
    finally:
        log.removeHandler(handler)
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {**first, "ts": None} == {**second, "ts": None}
    assert (second["msg"], second["status"], second["reason"]) == ("request", 201, None)
