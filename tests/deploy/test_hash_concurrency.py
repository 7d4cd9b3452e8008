"""global_api hashes passwords one at a time per process (issue #8: memory under a login burst).

Each Argon2 hash takes `argon2_memory_cost` KiB (64 MiB by default) while it runs: on anyio's
shared 40-thread limiter, 16 simultaneous logins took a process from 107 to 1,070 MB.
"""

import asyncio
import threading
import time

from global_api.config import GlobalSettings
from global_api.users.passwords import hash_password, make_hasher, verify_password


def test_hashes_run_within_the_configured_concurrency() -> None:
    settings = GlobalSettings.model_construct(
        argon2_time_cost=1, argon2_memory_cost=8, argon2_parallelism=1, argon2_max_concurrent=2
    )
    hasher = make_hasher(settings)
    stored = hasher.hash("pw")
    lock, running, seen = threading.Lock(), [0], [0]
    verify = hasher.verify

    def counting_verify(hash: str, password: str) -> bool:
        with lock:
            running[0] += 1
            seen[0] = max(seen[0], running[0])
        time.sleep(0.02)
        try:
            return verify(hash, password)
        finally:
            with lock:
                running[0] -= 1

    hasher.verify = counting_verify  # type: ignore[method-assign,assignment]

    async def burst() -> list[bool]:
        checks = [verify_password(hasher, stored, "pw") for _ in range(8)]
        return await asyncio.gather(*checks, verify_password(hasher, stored, "no"))

    assert asyncio.run(burst()) == [True] * 8 + [False]
    assert seen[0] == 2
    assert asyncio.run(hash_password(hasher, "pw")).startswith("$argon2id$")


def test_one_hash_at_a_time_by_default() -> None:
    assert GlobalSettings.model_fields["argon2_max_concurrent"].default == 1
