"""The per-process cap on requests in flight that the launchers configure (issue #8, memory)."""

import asyncio
from pathlib import Path

import httpx
import yaml
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY

from common.observability import Admission, AdmissionControl, instrument, stepped_aside
from common.priority import finishes_sale
from deploy.local.topology import REGIONS, regional_env
from regional_api.config import RegionalSettings

ROOT = Path(__file__).resolve().parents[2]
CURRENT = b"4102444800." + b"s" * 43  # a pass's shape, open until 2100


def _app(gate: asyncio.Event, queue_timeout: float = 5.0) -> FastAPI:
    app = FastAPI()

    @app.post("/work")
    async def work() -> dict[str, str]:
        await gate.wait()
        return {"status": "done"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    app.add_middleware(
        AdmissionControl, service="test", max_in_flight=1, max_queued=1, queue_timeout=queue_timeout
    )
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_beyond_the_queue_answers_503_overloaded_with_retry_after_and_error_body() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        async with _client(_app(gate)) as http:
            first = asyncio.create_task(http.post("/work"))
            await _settle()
            queued = asyncio.create_task(http.post("/work"))
            await _settle()
            shed = await http.post("/work")
            assert shed.status_code == 503
            assert shed.headers["Retry-After"] == "1"
            assert shed.json() == {
                "error": "overloaded",
                "detail": "the service is at capacity; retry",
            }
            probe = await http.get("/readyz")  # never queued behind the work
            assert probe.status_code == 200
            gate.set()
            assert (await first).status_code == 200
            assert (await queued).status_code == 200  # admitted when the slot came free

    asyncio.run(scenario())


def test_a_request_queued_past_the_timeout_is_shed() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        async with _client(_app(gate, queue_timeout=0.05)) as http:
            first = asyncio.create_task(http.post("/work"))
            await _settle()
            late = await http.post("/work")
            assert late.status_code == 503
            assert late.json()["error"] == "overloaded"
            gate.set()
            assert (await first).status_code == 200
            assert (await http.post("/work")).status_code == 200  # the slot was given back

    asyncio.run(scenario())


def test_payments_and_check_ins_are_admitted_before_new_work() -> None:
    async def scenario() -> None:
        gate, order = asyncio.Event(), []
        app = FastAPI()

        @app.post("/work")
        async def work() -> None:
            order.append("work")
            await gate.wait()

        @app.post("/reservations/{rid}/payments")
        async def pay(rid: str) -> None:
            order.append(f"pay {rid}")

        app.add_middleware(
            AdmissionControl,
            service="test",
            max_in_flight=1,
            max_queued=1,
            queue_timeout=5.0,
            prioritized=finishes_sale,
        )
        async with _client(app) as http:
            busy = asyncio.create_task(http.post("/work"))
            await _settle()
            waiting = asyncio.create_task(http.post("/work"))
            await _settle()
            payment = asyncio.create_task(http.post("/reservations/r1/payments"))
            await _settle()
            # Each line holds max_queued: the new-work line is full, the payments line is not.
            assert (await http.post("/work")).status_code == 503
            assert (await http.post("/reservations/r2/payments")).status_code == 503
            gate.set()
            assert [(await t).status_code for t in (busy, payment, waiting)] == [200, 200, 200]
        assert order == ["work", "pay r1", "work"]

    asyncio.run(scenario())


def test_priority_requests_are_payments_check_ins_and_admitted_holds_and_seat_maps() -> None:
    assert finishes_sale("POST", "/reservations/res-eu-west-abc/payments")
    assert finishes_sale("POST", "/cinemas/cin-eu-west-abc/tickets/validate")
    assert not finishes_sale("GET", "/reservations/res-eu-west-abc/payments")
    assert not finishes_sale("POST", "/shows/show-eu-west-abc/holds")
    assert not finishes_sale("POST", "/reservations/a/b/payments")
    admitted = [(b"x-admission-pass", CURRENT)]
    assert finishes_sale("POST", "/shows/show-eu-west-abc/holds", admitted)
    assert finishes_sale("POST", "/shows/show-eu-west-abc/best-available", admitted)
    assert finishes_sale("GET", "/shows/show-eu-west-abc/seats", admitted)
    assert not finishes_sale("GET", "/shows/show-eu-west-abc/seats")
    assert not finishes_sale("GET", "/shows/show-eu-west-abc/line", admitted)
    assert not finishes_sale("POST", "/shows/show-eu-west-abc/line", admitted)


def test_only_a_pass_that_looks_current_goes_first() -> None:
    hold = "/shows/show-eu-west-abc/holds"
    for value in (
        b"1700000000." + b"s" * 43,  # its window is over
        b"4102444800.sig",  # not a signature's length
        b"4102444800." + b"s" * 42 + b"=",
        b"x4102444800." + b"s" * 43,
        b"",
    ):
        assert not finishes_sale("POST", hold, [(b"x-admission-pass", value)]), value


def test_an_admitted_customers_seat_map_goes_before_earlier_new_work() -> None:
    async def scenario() -> None:
        gate, order = asyncio.Event(), []
        app = FastAPI()

        @app.post("/shows/{show_id}/line")
        async def join(show_id: str) -> None:
            order.append(f"join {show_id}")
            await gate.wait()

        @app.get("/shows/{show_id}/seats")
        async def seats(show_id: str) -> None:
            order.append(f"seats {show_id}")

        app.add_middleware(
            AdmissionControl,
            service="test",
            max_in_flight=1,
            max_queued=4,
            queue_timeout=5.0,
            prioritized=finishes_sale,
        )
        admitted = {"X-Admission-Pass": CURRENT.decode()}
        async with _client(app) as http:
            tasks = []
            for name, headers in (("s1", {}), ("s2", {}), ("s3", {"X-Admission-Pass": "1.x"})):
                tasks.append(asyncio.create_task(http.post(f"/shows/{name}/line", headers=headers)))
                await _settle()
            for name, headers in (("s2", {"X-Admission-Pass": "1.x"}), ("s1", admitted)):
                tasks.append(asyncio.create_task(http.get(f"/shows/{name}/seats", headers=headers)))
                await _settle()
            gate.set()
            assert [(await t).status_code for t in tasks] == [200] * 5
        assert order == ["join s1", "seats s1", "join s2", "join s3", "seats s2"]

    asyncio.run(scenario())


def test_instrument_adds_the_cap_only_when_configured() -> None:
    assert RegionalSettings().admission() is None
    bare = FastAPI()
    instrument(bare, service="regional_api", admission=RegionalSettings().admission())
    assert "AdmissionControl" not in [getattr(m.cls, "__name__", "") for m in bare.user_middleware]

    settings = RegionalSettings(max_in_flight=8)
    assert settings.admission() == Admission(
        max_in_flight=8, max_queued=32, queue_timeout=5.0, prioritized=finishes_sale
    )
    capped = FastAPI()
    instrument(capped, service="regional_api", admission=settings.admission())
    # Inside the observability middleware: shed requests are counted and logged too.
    assert [getattr(m.cls, "__name__", "") for m in capped.user_middleware] == [
        "ObservabilityMiddleware",
        "AdmissionControl",
    ]


def test_every_launcher_caps_regional_replicas_alike(tmp_path: Path) -> None:
    local = regional_env(
        REGIONS[0], dsn="postgresql://x/y", global_url="http://g", jwks_cache=tmp_path
    )
    wanted = {"REGIONAL_MAX_IN_FLIGHT": "16", "REGIONAL_MAX_QUEUED": "256"}
    assert wanted.items() <= local.items()
    compose = yaml.safe_load((ROOT / "docker-compose.regions.yml").read_text())
    regional = [
        s for s in compose["services"].values() if "REGIONAL_REGION" in (s.get("environment") or {})
    ]
    assert regional
    for service in regional:
        assert wanted.items() <= {k: str(v) for k, v in service["environment"].items()}.items()
    k8s = (ROOT / "deploy" / "k8s" / "base" / "kustomization.yaml").read_text()
    assert all(f"{name}={value}" in k8s for name, value in wanted.items())


def test_a_request_that_steps_aside_lends_its_slot_and_comes_back_past_the_cap_at_worst() -> None:
    """While one request waits on another system, the next takes its slot; back, it finishes
    past the cap if the slot is still taken after the queue timeout, and the books balance."""

    def in_flight() -> float | None:
        return REGISTRY.get_sample_value("http_requests_in_flight", {"service": "lend"})

    async def scenario() -> None:
        provider, gate = asyncio.Event(), asyncio.Event()
        app = FastAPI()

        @app.post("/pay")
        async def pay(request: Request) -> dict[str, str]:
            async with stepped_aside(request.scope):
                await provider.wait()
            return {"status": "settled"}

        @app.post("/work")
        async def work() -> dict[str, str]:
            await gate.wait()
            return {"status": "done"}

        app.add_middleware(
            AdmissionControl, service="lend", max_in_flight=1, max_queued=1, queue_timeout=0.2
        )
        async with _client(app) as http:
            paying = asyncio.create_task(http.post("/pay"))
            await _settle()
            assert in_flight() == 0  # at the provider: its slot is lent
            working = asyncio.create_task(http.post("/work"))
            await _settle()
            assert in_flight() == 1  # the lent slot, taken at once
            provider.set()  # back: the slot is still taken; after 0.2 s it goes past the cap
            assert (await asyncio.wait_for(paying, 5)).json() == {"status": "settled"}
            gate.set()
            assert (await working).status_code == 200
            gate.clear()
            first = asyncio.create_task(http.post("/work"))
            second = asyncio.create_task(http.post("/work"))
            await _settle()
            assert in_flight() == 1  # one slot again: the one past the cap was given back
            gate.set()
            assert [(await first).status_code, (await second).status_code] == [200, 200]

    asyncio.run(scenario())
