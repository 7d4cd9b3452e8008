"""The rush's client (benchmarks/suite/own_http.py): a customer's connection and a bounded pool,
against a real server on 127.0.0.1."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from benchmarks.suite.line_rush import Tally, _keyed
from benchmarks.suite.own_http import OwnConnection, OwnPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _listening(handle: Handler) -> AsyncIterator[str]:
    """A server on 127.0.0.1 serving each connection with `handle`, for as long as the block: its URL."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


class _Server:
    """An HTTP/1.1 server on 127.0.0.1 that counts connections and can drop an idle one."""

    def __init__(
        self,
        *,
        chunked: bool = False,
        close_after_first: bool = False,
        say_close: bool = False,
        drop_second: bool = False,
        hold: bool = False,
    ) -> None:
        self.chunked = chunked
        self.close_after_first = close_after_first
        self.say_close = say_close  # answer `connection: close` and keep reading regardless
        self.drop_second = drop_second  # close without answering the second request once
        self.connections = 0
        self.bodies: list[bytes] = []
        self.on_connection: list[int] = []  # the connection each body came on (1, 2, ...)
        self.hold = hold  # answer on a later loop turn, so requests sent together overlap
        self.in_flight = 0
        self.most_in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed the connection
                break
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            if self.drop_second and len(self.bodies) == 1:
                self.drop_second = False
                break  # as a server whose keep-alive timeout passed as the request came
            self.bodies.append(body)
            self.on_connection.append(connection)
            number = len(self.bodies)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            if self.hold:
                await asyncio.sleep(0.02)
            self.in_flight -= 1
            payload = json.dumps({"n": number}).encode()
            if self.chunked:
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
                framing = b"transfer-encoding: chunked"
            else:
                body, framing = payload, b"content-length: %d" % len(payload)
            if self.say_close:
                framing += b"\r\nconnection: close"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%s\r\n\r\n" % framing
            )
            writer.write(body)
            await writer.drain()
            if self.close_after_first:  # as a server whose keep-alive timeout passed
                break
        writer.close()

    async def exchange(self, requests: int) -> list[tuple[int, object]]:
        answers = []
        async with _listening(self.handle) as url:
            conn = OwnConnection(url, timeout=10)
            try:
                for n in range(requests):
                    async with conn.request("POST", "/line", json={"i": n}) as answer:
                        answers.append((answer.status, await answer.json()))
                    await asyncio.sleep(0.05)  # the server's close arrives before the next request
            finally:
                conn.close()
        return answers


def test_requests_share_one_kept_alive_connection() -> None:
    server = _Server()
    answers = asyncio.run(server.exchange(3))
    assert answers == [(200, {"n": 1}), (200, {"n": 2}), (200, {"n": 3})]
    assert server.connections == 1
    assert server.bodies == [b'{"i":0}', b'{"i":1}', b'{"i":2}']


def test_a_chunked_answer_is_read_whole() -> None:
    answers = asyncio.run(_Server(chunked=True).exchange(2))
    assert answers == [(200, {"n": 1}), (200, {"n": 2})]


def test_a_connection_the_server_closed_is_opened_again() -> None:
    server = _Server(close_after_first=True)
    answers = asyncio.run(server.exchange(3))
    assert [status for status, _ in answers] == [200, 200, 200]
    assert server.connections == 3


def test_a_connection_close_answer_sends_the_next_request_on_a_new_connection() -> None:
    # The server keeps reading after its `connection: close` answer, so a client that wrote
    # the next request on the same socket would be answered there (as the router's final watch).
    server = _Server(say_close=True)
    answers = asyncio.run(server.exchange(2))
    assert answers == [(200, {"n": 1}), (200, {"n": 2})]
    assert server.on_connection == [1, 2]


def test_a_kept_alive_connection_reset_under_a_request_is_retried_on_a_new_one() -> None:
    server = _Server(drop_second=True)
    answers = asyncio.run(server.exchange(3))
    assert answers == [(200, {"n": 1}), (200, {"n": 2}), (200, {"n": 3})]
    assert server.on_connection == [1, 2, 2]


async def _two_at_once(server: _Server) -> list[tuple[int, Any]]:
    """Two requests sent together on one customer's connection, as its leave and its map read."""
    async with _listening(server.handle) as url:
        conn = OwnConnection(url, timeout=5)

        async def one(n: int) -> tuple[int, Any]:
            async with conn.request("POST", "/line", json={"i": n}) as answer:
                return answer.status, await answer.json()

        try:
            answers = [await one(0)]  # the connection is open and idle when the two go
            answers += await asyncio.gather(one(1), one(2))
            answers.append(await one(3))  # on one of the two, kept alive
        finally:
            conn.close()
    return answers


def test_requests_in_flight_together_get_a_connection_each() -> None:
    server = _Server()
    answers = asyncio.run(_two_at_once(server))
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    assert sorted(answer["n"] for _, answer in answers) == [1, 2, 3, 4]
    assert server.connections == 2
    assert sorted(server.bodies) == [b'{"i":0}', b'{"i":1}', b'{"i":2}', b'{"i":3}']


async def _pooled(server: _Server, limit: int, requests: int) -> tuple[list[Any], int]:
    """`requests` customers' requests sent together through a pool of `limit` connections."""
    async with _listening(server.handle) as url:
        pool = OwnPool(url, limit, timeout=10)

        async def one(n: int) -> Any:
            async with pool.request("POST", "/line", json={"i": n}) as answer:
                assert answer.status == 200
                return await answer.json()

        try:
            answers = await asyncio.gather(*(one(n) for n in range(requests)))
        finally:
            pool.close()
    return answers, pool.opened


def test_requests_above_the_pool_size_wait_for_a_connection_and_are_all_answered() -> None:
    server = _Server(hold=True)
    answers, opened = asyncio.run(_pooled(server, limit=3, requests=12))
    assert sorted(answer["n"] for answer in answers) == list(range(1, 13))
    assert opened == server.connections == 3  # the other 9 waited and reused the three
    assert server.most_in_flight == 3
    assert sorted(server.bodies) == sorted(b'{"i":%d}' % n for n in range(12))


def test_a_connection_close_answer_frees_the_pool_slot_for_a_new_connection() -> None:
    server = _Server(say_close=True)
    answers, opened = asyncio.run(_pooled(server, limit=1, requests=3))
    assert [answer["n"] for answer in answers] == [1, 2, 3]
    assert server.on_connection == [1, 2, 3]  # each after the last one's close, one at a time
    assert opened == 3


def test_a_pooled_connection_reset_under_a_request_is_retried_once_on_a_new_one() -> None:
    server = _Server(drop_second=True)
    answers, opened = asyncio.run(_pooled(server, limit=1, requests=3))
    assert [answer["n"] for answer in answers] == [1, 2, 3]
    assert server.on_connection == [1, 2, 2]
    assert opened == 2


def test_a_pool_of_no_bound_opens_a_connection_per_request_in_flight() -> None:
    server = _Server(hold=True)
    answers, opened = asyncio.run(_pooled(server, limit=0, requests=5))
    assert sorted(answer["n"] for answer in answers) == [1, 2, 3, 4, 5]
    assert opened == server.connections == 5


async def _scripted(answers: list[bytes]) -> tuple[tuple[int, Any], list[bytes], Tally]:
    """`line_rush._keyed` over an OwnConnection to a server answering `answers` in turn."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            heads.append(head)
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(answers.pop(0))
            await writer.drain()
        writer.close()

    tally = Tally()
    async with _listening(handle) as url:
        conn = OwnConnection(url, timeout=10)
        try:
            status, answer, _, saw_5xx = await _keyed(conn, tally, "/pay", {}, {"card": 1}, "pay-7")
        finally:
            conn.close()
    assert saw_5xx
    return (status, answer), heads, tally


def _answer(status: str, body: dict[str, Any], extra: bytes = b"") -> bytes:
    payload = json.dumps(body).encode()
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
    return head % (status.encode(), len(payload), extra) + payload


def test_keyed_writes_retry_a_503_and_ask_again_after_a_202() -> None:
    answers = [
        _answer("503 Service Unavailable", {"error": "region_overloaded"}, b"retry-after: 1\r\n"),
        _answer("202 Accepted", {"status": "pending"}),
        _answer("201 Created", {"id": "res-1"}),
    ]
    (status, answer), heads, tally = asyncio.run(_scripted(answers))
    assert (status, answer) == (201, {"id": "res-1"})
    assert len(heads) == 3
    assert all(b"Idempotency-Key: pay-7" in head for head in heads)  # the same key each time
    assert tally.statuses == {"POST 503 region_overloaded": 1, "POST 202": 1, "POST 201": 1}
