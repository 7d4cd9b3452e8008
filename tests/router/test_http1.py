"""The router's own HTTP/1.1 client against a real upstream process."""

import asyncio

import pytest

from harness.ports import dead_url
from harness.procs import Proc
from router.upstreams.http1 import ConnectFailed, Disconnected, Http1Pool, PoolBusy


def _pool(url: str, limit: int = 4) -> Http1Pool:
    return Http1Pool(url, limit=limit, keepalive=4.0, connect_timeout=0.3, read_timeout=5.0)


def test_keep_alive_reuse_chunked_bodies_and_head(upstreams: dict[str, Proc]) -> None:
    async def scenario() -> None:
        pool = _pool(upstreams["c"].url)
        for _ in range(3):
            response = await pool.request("GET", "/echo?x=1", [(b"x-a", b"1")], None, wait=2)
            assert response.status == 200
            assert b'"x-a": "1"' in await response.read()
            response.release()
        assert len(pool._idle) == 1  # one connection, reused
        response = await pool.request("GET", "/big?n=200000", [], None, wait=2)
        assert response.content_length is None  # chunked
        assert sum([len(chunk) async for chunk in response.chunks()]) == 200_000
        response.release()
        response = await pool.request("HEAD", "/echo", [], None, wait=2)
        assert (response.status, await response.read()) == (200, b"")
        response.release()
        response = await pool.request("POST", "/echo", [], b"abc", wait=2)
        assert b'"body_len": 3' in await response.read()
        response.release()
        await pool.close()

    asyncio.run(scenario())


def test_failures_are_classified(upstreams: dict[str, Proc]) -> None:
    async def scenario(nowhere: str) -> None:
        dead = _pool(nowhere)
        with pytest.raises(ConnectFailed):
            await dead.request("GET", "/", [], None, wait=1)
        pool = _pool(upstreams["c"].url, limit=1)
        slow = asyncio.create_task(pool.request("GET", "/slow?s=1", [], None, wait=0.6))
        await asyncio.sleep(0.05)
        with pytest.raises(PoolBusy):
            await pool.request("GET", "/echo", [], None, wait=1)
        with pytest.raises(TimeoutError):
            await slow
        response = await pool.request("GET", "/echo", [], None, wait=1)  # slot given back
        assert response.status == 200
        response.release()
        await pool.close()

    with dead_url() as nowhere:
        asyncio.run(scenario(nowhere))
    assert issubclass(Disconnected, ConnectionError)


def test_an_upstream_under_a_path_prefix(upstreams: dict[str, Proc]) -> None:
    async def scenario() -> None:
        pool = _pool(upstreams["c"].url + "/base/")
        response = await pool.request("GET", "/echo?q=1", [], None, wait=2)
        assert b'"path": "/base/echo"' in await response.read()
        response.release()
        await pool.close()

    asyncio.run(scenario())


def test_get_reads_whole_answers_and_fresh_ones_skip_the_limit(upstreams: dict[str, Proc]) -> None:
    async def scenario() -> None:
        pool = _pool(upstreams["c"].url, limit=1)
        answer = await pool.get("/echo", [(b"x-a", b"1")])
        assert answer.status == 200
        assert answer.header(b"content-type") == b"application/json"
        assert b'"x-a": "1"' in answer.body
        assert len(pool._idle) == 1  # pooled: kept alive for the next request
        busy = asyncio.create_task(pool.request("GET", "/slow?s=5", [], None, wait=6))

        async def slot_taken() -> None:
            while pool._slots.free:  # until the slow request has the pool's only slot
                await asyncio.sleep(0.01)

        await asyncio.wait_for(slot_taken(), 5)
        fresh = await pool.get("/readyz", fresh=True)  # a probe: a new connection, no slot
        assert fresh.status == 200
        assert not busy.done()
        busy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await busy
        await pool.close()

    asyncio.run(scenario())
