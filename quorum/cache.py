"""Django's Redis cache, with its connections kept for the life of the process.

Under ASGI, Django makes a cache backend per request (its cache handler keeps one per
context), and the Redis backend keeps its connection pool on itself, so every request opened
a new connection to Redis (Django ticket #35651). Here one client per server list, and with
it the pool, belongs to the process; redis-py's pools are safe to share between threads.
"""

import functools

from django.core.cache.backends import redis


class RedisCache(redis.RedisCache):
    @functools.cached_property
    def _cache(self):
        return _client(tuple(self._servers), tuple(sorted(self._options.items())))


@functools.cache
def _client(servers, options):
    return redis.RedisCacheClient(list(servers), **dict(options))
