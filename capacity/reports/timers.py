"""What happens when time passes without a report: a stop past its expected end becomes
`stop_expired`, and figures past their facility's reporting interval are announced stale.

Both run in every worker's keeper round and are exactly-once across workers without a lock:
an expiry is a system report that applies only while the stop it expires is still the stored
SEH status (the one apply script checks that), and stale announcements move a cursor with a
compare-and-set script.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from capacity import metrics
from capacity.domain import SehStatus, utc_iso
from capacity.errors import LiveStateRebuilding
from capacity.reports.models import Report, SehReport
from capacity.reports.service import Applier, ReportRefused, ReportSuperseded, apply_report
from capacity.store import facility_key, load_script, ready_key, seh_expiry_key, stale_cursor_key, stale_key, stream_key
from regions.registry import Registry

log = logging.getLogger(__name__)

SYSTEM_KEY = "system"
STALE_LUA = load_script("capacity.reports", "stale.lua")


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _at(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def expire_stops(
    *, redis: aioredis.Redis, applier: Applier, registry: Registry, region_id: str, stream_maxlen: int, now: datetime | None = None
) -> int:
    """Turn every stop (or closure) of the region whose expected end has passed into
    `stop_expired`, keeping its reason and expected end; returns how many this call expired.

    The system report is measured at the expected end (or just after the facility's newest
    report, if later), so a report the hospital sends now is newer and wins. It is recorded in
    SQL by the backstop, like every stream event."""
    now = now or datetime.now(UTC)
    expired = 0
    for facility_id, due in await redis.zrangebyscore(seh_expiry_key(region_id), "-inf", _ms(now), withscores=True):
        facility = registry.facilities.get(facility_id)
        stored = await redis.hmget(facility_key(region_id, facility_id), "seh", "ts")
        if facility is None or not stored[0]:
            await redis.zrem(seh_expiry_key(region_id), facility_id)
            continue
        seh = orjson.loads(stored[0])
        if seh["status"] not in (SehStatus.stop, SehStatus.closed):
            await redis.zrem(seh_expiry_key(region_id), facility_id)
            continue
        measured = _at(max(due, int(stored[1] or 0) + 1))
        report = Report.model_construct(
            measured_at=measured,
            seh=SehReport.model_construct(
                status=SehStatus.stop_expired.value,
                reason=seh.get("reason"),
                reason_text=seh.get("reason_text"),
                expected_until=datetime.fromisoformat(seh["expected_until"]) if seh.get("expected_until") else None,
            ),
            units=None,
        )
        try:
            await apply_report(
                applier=applier, facility=facility, report=report, key_id=SYSTEM_KEY, stream_maxlen=stream_maxlen, replaces_seh=stored[0]
            )
        except (ReportSuperseded, ReportRefused):
            continue  # a new report or another worker came first: nothing to expire
        except LiveStateRebuilding:
            return expired
        expired += 1
        log.info("SEH stop of %s passed its expected end unconfirmed: stop_expired", facility_id)
    return expired


async def announce_stale(
    *, redis: aioredis.Redis, registry: Registry, region_id: str, stream_maxlen: int, now: datetime | None = None
) -> int:
    """Put one `stale` entry on the region stream for each facility whose newest report passed
    its reporting interval since the last round; returns how many this call announced."""
    now_ms = _ms(now or datetime.now(UTC))
    cursor = await redis.get(stale_cursor_key(region_id))
    if cursor is None:
        await redis.set(stale_cursor_key(region_id), now_ms, nx=True)  # a fresh start announces nothing of the past
        return 0
    if now_ms <= int(cursor):
        return 0
    passed = await redis.zrangebyscore(stale_key(region_id), f"({cursor}", now_ms, withscores=True)
    pairs: list[str] = []
    for facility_id, stale_ms in passed:
        facility = registry.facilities.get(facility_id)
        interval_ms = (facility.reporting_interval_s if facility else 0) * 1000
        entry = {
            "kind": "stale",
            "facility_id": facility_id,
            "region_id": region_id,
            "since": utc_iso(_at(stale_ms)),
            "last_measured_at": utc_iso(_at(stale_ms - interval_ms)),
        }
        pairs += [facility_id, orjson.dumps(entry).decode()]
    keys = [stale_key(region_id), stale_cursor_key(region_id), stream_key(region_id), ready_key(region_id)]
    return int(await redis.eval(STALE_LUA, len(keys), *keys, cursor, now_ms, stream_maxlen, *pairs))


async def count_stale(*, redis: aioredis.Redis, region_id: str, now: datetime | None = None) -> int:
    """Facilities of the region whose newest report is past its interval (never-reported ones
    are not counted: they have no figures to go stale)."""
    count = int(await redis.zcount(stale_key(region_id), "-inf", _ms(now or datetime.now(UTC))))
    metrics.STALE_FACILITIES.labels(region=region_id).set(count)
    return count
