"""The large rush's per-customer connection (benchmarks/suite/own_http.py) against a real server."""

import asyncio
import json

from benchmarks.suite.own_http import OwnConnection


class _Server:
    """An HTTP/1.1 server on 127.0.0.1 that counts connections and can drop an idle one."""

    def __init__(self, *, chunked: bool = False, close_after_first: bool = False) -> None:
        self.chunked = chunked
        self.close_after_first = close_after_first
        self.connections = 0
        self.bodies: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed the connection
                break
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.bodies.append(await reader.readexactly(length))
            payload = json.dumps({"n": len(self.bodies)}).encode()
            if self.chunked:
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
                framing = b"transfer-encoding: chunked"
            else:
                body, framing = payload, b"content-length: %d" % len(payload)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%s\r\n\r\n" % framing
            )
            writer.write(body)
            await writer.drain()
            if self.close_after_first:  # as a server whose keep-alive timeout passed
                break
        writer.close()

    async def exchange(self, requests: int) -> list[tuple[int, object]]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = OwnConnection(f"http://127.0.0.1:{port}", timeout=10)
        answers = []
        try:
            for n in range(requests):
                async with conn.request("POST", "/line", json={"i": n}) as answer:
                    answers.append((answer.status, await answer.json()))
                await asyncio.sleep(0.05)  # the server's close arrives before the next request
        finally:
            conn.close()
            server.close()
            await server.wait_closed()
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
