"""Reading a region's stream, typed as the service's clients answer.

redis-py types XRANGE and XREAD for any client: ids and fields as bytes or str, an entry that
may be None (XCLAIM's deleted ones), and XREAD's answer in each protocol's shape. Every client
of the service decodes answers (`decode_responses=True`) and speaks RESP2, and XRANGE and XREAD
name only entries that exist, so the answer is narrowed here, once, for every caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import redis.asyncio as aioredis
from redis.typing import KeyT, StreamIdT

StreamEntry = tuple[str, dict[str, str]]
"""One stream entry: its id and its fields."""


async def stream_range(redis: aioredis.Redis, key: str, *, min: str = "-", max: str = "+", count: int | None = None) -> list[StreamEntry]:
    """XRANGE: the entries of `key` from `min` to `max` (either may be exclusive, `(id`), oldest first."""
    return cast(list[StreamEntry], await redis.xrange(key, min=min, max=max, count=count))


async def stream_read(
    redis: aioredis.Redis, positions: Mapping[str, str], *, count: int, block_ms: int
) -> list[tuple[str, list[StreamEntry]]]:
    """XREAD: the entries after each stream's position, per stream that has any, waiting up to
    `block_ms` for one (none when the wait ran out)."""
    streams: dict[KeyT, StreamIdT] = {key: position for key, position in positions.items()}
    # RESP2's shape of XREAD's answer: [[stream, entries], ...], or None after an empty wait.
    response = cast(list[list[Any]] | None, await redis.xread(streams, count=count, block=block_ms))
    return [(stream, entries) for stream, entries in response or ()]
