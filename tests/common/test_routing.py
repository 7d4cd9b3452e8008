"""A lean handler serves valid JSON bodies; every other request gets FastAPI's own answer."""

import asyncio
import re
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from common.errors import AppError, install_error_handlers
from common.routing import lean, lean_bodiless, mount


class Body(BaseModel):
    """A request model as ours are: unknown fields forbidden, a constrained list."""

    model_config = ConfigDict(extra="forbid")
    ids: list[int] = Field(min_length=1)


class Teapot(AppError):
    """An error the lean handler raises, answered by the app's exception handler."""

    code = "teapot"
    status = 418


async def word() -> str:
    """What the FastAPI path's dependency gives."""
    return "dependency"


def _app(*, with_lean: bool) -> FastAPI:
    """One endpoint, served leanly or not: the lean handler tags its answers."""

    async def lean_handler(request: Request, body: Body) -> Response:
        if body.ids == [418]:
            raise Teapot("short and stout")
        return Response(f'{{"via": "lean", "ids": {body.ids}}}', media_type="application/json")

    router = APIRouter()

    async def endpoint(body: Body, said: Annotated[str, Depends(word)]) -> dict[str, Any]:
        """Echo the body."""
        if body.ids == [418]:
            raise Teapot("short and stout")
        return {"via": said, "ids": body.ids}

    if with_lean:
        lean(Body, lean_handler)(endpoint)
    router.post("/things/{thing_id}")(endpoint)
    app = FastAPI()
    install_error_handlers(app)
    mount(app, router)
    return app


def _post(app: FastAPI, content: bytes, headers: dict[str, str]) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/things/x", content=content, headers=headers)

    return asyncio.run(send())


JSON = {"content-type": "application/json"}
# Requests the lean handler must leave to FastAPI: its answer is then the same with or without.
FALLBACKS = [
    (b'{"ids": [1, 2]}', {"content-type": "application/json; charset=utf-8"}),
    (b'{"ids": [1, 2]}', {"content-type": "application/vnd.api+json"}),
    (b'{"ids": [1, 2]}', {"content-type": "text/plain"}),
    (b'{"ids": [1, 2]}', {}),
    (b"", JSON),
    (b"null", JSON),
    (b'{"ids": [1, 2]', JSON),
    (b'{"ids": []}', JSON),
    (b'{"ids": ["x"]}', JSON),
    (b'{"ids": [1], "more": 1}', JSON),
    (b'[{"ids": [1]}]', JSON),
    ('{"ids": [1], "name": "\udcff"}'.encode("utf-8", "surrogatepass"), JSON),
    (b'{"ids": ' + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"}", JSON),  # json.loads recurses
]


@pytest.fixture
def apps() -> tuple[FastAPI, FastAPI]:
    return _app(with_lean=True), _app(with_lean=False)


def test_a_valid_json_body_goes_to_the_lean_handler(apps: tuple[FastAPI, FastAPI]) -> None:
    """No dependency resolved: the lean handler answers."""
    leaned, plain = apps
    assert _post(leaned, b'{"ids": [1, 2]}', JSON).json() == {"via": "lean", "ids": [1, 2]}
    assert _post(plain, b'{"ids": [1, 2]}', JSON).json() == {"via": "dependency", "ids": [1, 2]}


@pytest.mark.parametrize("index", range(len(FALLBACKS)))
def test_any_other_request_gets_fastapis_answer(apps: tuple[FastAPI, FastAPI], index: int) -> None:
    """Other content types, bad JSON, invalid bodies: the same status and body as without."""
    leaned, plain = apps
    content, headers = FALLBACKS[index]
    ours, theirs = _post(leaned, content, headers), _post(plain, content, headers)
    assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content)


def test_the_app_answers_the_lean_handlers_errors(apps: tuple[FastAPI, FastAPI]) -> None:
    """An AppError raised by the lean handler gets the same error body as from the endpoint."""
    leaned, plain = apps
    ours, theirs = (_post(app, b'{"ids": [418]}', JSON) for app in (leaned, plain))
    assert ours.status_code == theirs.status_code == 418
    assert ours.json() == theirs.json()


def test_dependency_overrides_take_fastapis_path(apps: tuple[FastAPI, FastAPI]) -> None:
    """With an override set (tests), every request is resolved by FastAPI, overrides applied."""
    leaned, _ = apps

    async def other() -> str:
        return "overridden"

    leaned.dependency_overrides[word] = other
    answer = _post(leaned, b'{"ids": [3]}', JSON)
    assert answer.json() == {"via": "overridden", "ids": [3]}


def test_a_body_in_several_chunks_is_read_whole(apps: tuple[FastAPI, FastAPI]) -> None:
    """A body streamed in pieces is put together before it is parsed."""
    leaned, _ = apps

    async def send() -> httpx.Response:
        async def pieces() -> Any:
            for piece in (b'{"ids"', b": [4,", b" 5]}"):
                yield piece

        transport = httpx.ASGITransport(app=leaned)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/things/x", content=pieces(), headers=JSON)

    assert asyncio.run(send()).json() == {"via": "lean", "ids": [4, 5]}


def test_a_lean_route_is_matched_first_unless_an_earlier_route_could_match() -> None:
    """Moved ahead only past routes that cannot match its requests; else mounting refuses."""
    leaned = _app(with_lean=True)
    assert getattr(leaned.router.routes[0], "path", None) == "/things/{thing_id}"
    assert list(leaned.openapi()["paths"]) == ["/things/{thing_id}"]

    async def lean_handler(request: Request, body: Body) -> Response:
        return Response()

    async def endpoint(body: Body) -> None:
        """Take a body."""

    async def other(body: Body) -> None:
        """Take any body."""

    lean(Body, lean_handler)(endpoint)
    router = APIRouter()
    router.get("/things/{thing_id}/x")(other)  # another method: may be passed
    router.post("/things/{kind}/{thing_id}")(other)  # matches the lean route's requests
    router.post("/things/{thing_id}/x")(endpoint)
    refusal = re.escape("cannot be matched before /things/{kind}/{thing_id}")
    with pytest.raises(ValueError, match=refusal):
        mount(FastAPI(), router)


def _bodiless_app() -> FastAPI:
    """One endpoint that takes no body, served leanly: the lean handler tags its answers."""

    async def lean_handler(request: Request) -> Response:
        thing = request.path_params["thing_id"]
        if thing == "teapot":
            raise Teapot("short and stout")
        return Response(f'{{"via": "lean", "thing": "{thing}"}}', media_type="application/json")

    async def endpoint(thing_id: str, said: Annotated[str, Depends(word)]) -> dict[str, Any]:
        """Name the thing."""
        if thing_id == "teapot":
            raise Teapot("short and stout")
        return {"via": said, "thing": thing_id}

    lean_bodiless(lean_handler)(endpoint)
    router = APIRouter()
    router.post("/things/{thing_id}")(endpoint)
    app = FastAPI()
    install_error_handlers(app)
    mount(app, router)
    return app


def test_a_bodiless_endpoint_is_served_leanly_whatever_the_body() -> None:
    """Any request goes to the lean handler, its errors rendered by the app; overrides do not."""
    app = _bodiless_app()
    for content, headers in [(b"", {}), (b"not json", JSON), *FALLBACKS[:3]]:
        assert _post(app, content, headers).json() == {"via": "lean", "thing": "x"}
    teapot = asyncio.run(_post_to(app, "/things/teapot"))
    assert (teapot.status_code, teapot.json()["error"]) == (418, "teapot")

    async def other() -> str:
        return "overridden"

    app.dependency_overrides[word] = other
    assert _post(app, b"", {}).json() == {"via": "overridden", "thing": "x"}


async def _post_to(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post(path)
