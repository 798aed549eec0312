"""Redis answers typed as the service's clients give them.

redis-py types each command for any client: `Awaitable[T] | T` (one class serves the sync and the
async client) with bytes or str inside. Every client of the service decodes answers
(`decode_responses=True`), so the answers the core reads are narrowed here, once, as
capacity.store.streams does for the streams.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis


async def hash_fields(redis: aioredis.Redis, key: str) -> dict[str, str]:
    """HGETALL: every field of the hash at `key` with its value (none when there is no hash)."""
    return cast(dict[str, str], await redis.hgetall(key))


async def text(redis: aioredis.Redis, key: str) -> str | None:
    """GET: the string at `key`, or None."""
    return cast(str | None, await redis.get(key))


async def scored_range(redis: aioredis.Redis, key: str, *, min: str | float, max: str | float) -> list[tuple[str, float]]:
    """ZRANGEBYSCORE ... WITHSCORES: the members scored from `min` to `max` (`(x` excludes x), lowest first."""
    return cast(list[tuple[str, float]], await redis.zrangebyscore(key, min, max, withscores=True))
