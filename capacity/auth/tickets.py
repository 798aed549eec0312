"""Single-use websocket tickets: a browser cannot put a header on a websocket, and a key in
the URL would land in proxy and server logs. An authenticated HTTP call gets a ticket that
opens one socket within a few seconds; whoever reads it from a log afterwards finds it spent.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import orjson
import redis.asyncio as aioredis

from capacity.auth.models import Principal
from capacity.domain import Role
from capacity.store.keys import ticket_key


async def issue_ticket(*, redis: aioredis.Redis, principal: Principal, ttl_s: float) -> str:
    ticket = secrets.token_urlsafe(24)
    held = {
        "key_id": principal.key_id,
        "label": principal.label,
        "role": principal.role.value,
        "facility_id": principal.facility_id,
        "regions": sorted(principal.region_ids) if principal.region_ids is not None else None,
        "valid_until": principal.valid_until.isoformat() if principal.valid_until else None,
    }
    await redis.set(ticket_key(ticket), orjson.dumps(held), px=max(1, int(ttl_s * 1000)))
    return ticket


async def redeem_ticket(*, redis: aioredis.Redis, ticket: str) -> Principal | None:
    """The ticket's principal, once: GETDEL makes a second use (on any worker) find nothing."""
    if not ticket or len(ticket) > 64:
        return None
    held = await redis.getdel(ticket_key(ticket))
    if held is None:
        return None
    data = orjson.loads(held)
    return Principal(
        key_id=data["key_id"],
        label=data["label"],
        role=Role(data["role"]),
        facility_id=data["facility_id"],
        region_ids=frozenset(data["regions"]) if data["regions"] is not None else None,
        valid_until=datetime.fromisoformat(data["valid_until"]) if data["valid_until"] else None,
    )
