"""The uvicorn internals the router's server leans on still exist, and uvicorn is the pinned one.

`router/proxy/bounds.py` and `protocol.py` subclass uvicorn's httptools protocol and call parts
of it that are not public (docs/benchmarks/router.md says why). A uvicorn release may rename
any of them; each test here names the internal that went missing, so an upgrade fails here
first, and not as a front-door or fast-path test gone wrong for no stated reason.
"""

import asyncio
import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.middleware import proxy_headers
from uvicorn.protocols.http import httptools_impl
from uvicorn.server import ServerState

ROOT = Path(__file__).resolve().parents[2]

# Module-level names imported by router.proxy.
MODULE_NAMES = [
    (httptools_impl, "HttpToolsProtocol"),
    (httptools_impl, "RequestResponseCycle"),
    (httptools_impl, "STATUS_LINE"),
    (proxy_headers, "ProxyHeadersMiddleware"),
]
# HttpToolsProtocol methods the router overrides or calls, with their parameters.
METHODS = {
    "__init__": ["self", "config", "server_state", "app_state", "_loop"],
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "on_message_begin": ["self"],
    "on_url": ["self", "url"],
    "on_header": ["self", "name", "value"],
    "on_headers_complete": ["self"],
    "on_body": ["self", "body"],
    "on_message_complete": ["self"],
    "on_response_complete": ["self"],
    "timeout_keep_alive_handler": ["self"],
    "pause_writing": ["self"],
    "resume_writing": ["self"],
    "send_400_response": ["self", "msg"],
    "handle_websocket_upgrade": ["self"],
    "_start_asgi_task": ["self", "cycle", "app"],
    "_unset_keepalive_if_required": ["self"],
    "_should_upgrade": ["self"],
    "_unsupported_upgrade_warning": ["self"],
}
CYCLE_PARAMETERS = [
    "self",
    "scope",
    "transport",
    "flow",
    "logger",
    "access_logger",
    "access_log",
    "default_headers",
    "message_event",
    "expect_100_continue",
    "keep_alive",
    "on_response",
]
# Attributes read or written on a protocol once a request's headers are in.
PROTOCOL_ATTRIBUTES = [
    "app",
    "parser",
    "cycle",
    "pipeline",
    "limit_concurrency",
    "root_path",
    "expect_100_continue",
    "url",
    "headers",
    "scope",
    "client",
    "scheme",
    "transport",
    "flow",
    "loop",
    "logger",
    "access_logger",
    "access_log",
    "server_state",
    "timeout_keep_alive",
]
CYCLE_ATTRIBUTES = [
    "scope",
    "response_started",
    "response_complete",
    "disconnected",
    "message_event",
    "more_body",
    "keep_alive",
]


@pytest.mark.parametrize(("module", "name"), MODULE_NAMES, ids=[n for _, n in MODULE_NAMES])
def test_imported_names_exist(module: Any, name: str) -> None:
    assert hasattr(module, name), f"uvicorn internal gone: {module.__name__}.{name}"


@pytest.mark.parametrize(("method", "parameters"), METHODS.items(), ids=list(METHODS))
def test_protocol_methods_keep_their_parameters(method: str, parameters: list[str]) -> None:
    found = getattr(httptools_impl.HttpToolsProtocol, method, None)
    assert found is not None, f"uvicorn internal gone: HttpToolsProtocol.{method}"
    assert list(inspect.signature(found).parameters) == parameters, (
        f"uvicorn internal changed: HttpToolsProtocol.{method}{inspect.signature(found)}"
    )


def test_cycle_keeps_its_parameters() -> None:
    signature = inspect.signature(httptools_impl.RequestResponseCycle.__init__)
    assert list(signature.parameters) == CYCLE_PARAMETERS, (
        f"uvicorn internal changed: RequestResponseCycle{signature}"
    )


def test_middleware_keeps_its_attributes() -> None:
    middleware = proxy_headers.ProxyHeadersMiddleware(cast(Any, _answer), trusted_hosts="127.0.0.2")
    for name in ("app", "trusted_hosts"):
        assert hasattr(middleware, name), f"uvicorn internal gone: ProxyHeadersMiddleware.{name}"


def test_protocol_and_cycle_keep_their_attributes() -> None:
    """A real request on loopback, seen from inside uvicorn's protocol."""
    seen = asyncio.run(_serve_one_request())
    missing = [name for name, present in seen.items() if not present]
    assert not missing, f"uvicorn internals gone: {', '.join(missing)}"
    assert seen, "the request never reached the protocol's callbacks"


def test_uvicorn_is_the_pinned_version() -> None:
    installed = Version(version("uvicorn"))
    lock = (ROOT / "requirements.lock").read_text()
    pinned = re.search(r"^uvicorn==(\S+)", lock, re.M)
    assert pinned is not None, "requirements.lock no longer pins uvicorn"
    assert installed == Version(pinned[1]), f"uvicorn {installed} installed, {pinned[1]} locked"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    spec = next(
        Requirement(line).specifier
        for line in pyproject["project"]["dependencies"]
        if Requirement(line).name == "uvicorn"
    )
    upgrade = f"{installed.major}.{installed.minor + 1}.0"
    assert installed in spec, f"pyproject.toml excludes the locked uvicorn {installed}: {spec}"
    assert upgrade not in spec, f"pyproject.toml must cap uvicorn below {upgrade}: {spec}"


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _serve_one_request() -> dict[str, bool]:
    seen: dict[str, bool] = {}

    class Watching(httptools_impl.HttpToolsProtocol):
        def on_headers_complete(self) -> None:
            seen.update((f"HttpToolsProtocol.{n}", hasattr(self, n)) for n in PROTOCOL_ATTRIBUTES)
            seen["FlowControl.read_paused"] = hasattr(self.flow, "read_paused")
            seen["ServerState.default_headers"] = hasattr(self.server_state, "default_headers")
            super().on_headers_complete()

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            seen.update((f"RequestResponseCycle.{n}", hasattr(cycle, n)) for n in CYCLE_ATTRIBUTES)
            super()._start_asgi_task(cycle, app)

    config = Config(app=_answer, lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Watching(config, state, {}), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: router\r\nconnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 204"), answer
    finally:
        server.close()
    return seen
