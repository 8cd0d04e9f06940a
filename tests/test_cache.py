"""The Redis cache keeps its connections for the life of the process, not of a request."""

import asyncio
import os

from asgiref.sync import sync_to_async

from quorum.cache import RedisCache

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def test_caches_made_for_different_requests_share_one_client_and_its_pool():
    """Django makes a cache backend per request under ASGI (ticket #35651)."""

    def backend_of_a_request():
        cache = RedisCache(REDIS_URL, {})
        cache.set("quorum-test-cache", "shared")
        return cache

    async def requests():
        return [await asyncio.create_task(sync_to_async(backend_of_a_request)()) for _ in range(3)]

    first, *others = asyncio.run(requests())

    assert all(other is not first for other in others)
    assert all(other._cache is first._cache for other in others)
    assert others[-1].get("quorum-test-cache") == "shared"
    first.delete("quorum-test-cache")
