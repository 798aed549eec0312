"""What happens when time passes without a report: a stop past its expected end becomes
`stop_expired`, and figures past their facility's reporting interval get a `stale` notice.

Both are jobs in every worker, per region, and exactly-once across workers without a lock:
an expiry is a system report that applies only while the stop it expires is still the stored
SEH status (the one apply script checks that), and stale notices move a cursor with a
compare-and-set script. Each worker looks at its replica first and goes to Redis only when
something is due, so a quiet region costs nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from capacity import metrics
from capacity.domain import SehStatus, utc_iso
from capacity.errors import LiveStateRebuilding
from capacity.live.replica import RegionLive
from capacity.reports.applier import Applier
from capacity.reports.models import SehReport
from capacity.reports.service import apply_system_seh
from capacity.state import FacilityLive
from capacity.store import scripts
from capacity.store.keys import facility_key, ready_key, stale_cursor_key, stale_key, stream_key
from capacity.store.replies import scored_range, text
from regions.registry import Registry

log = logging.getLogger(__name__)

EXPIRING = frozenset({SehStatus.stop, SehStatus.closed})


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _at(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def expired_stops(region: RegionLive, now: datetime) -> list[FacilityLive]:
    """Facilities of the region on stop (or closed) whose expected end has passed (a closure by
    opening hours ends when the hours begin: capacity.reports.hours, not here)."""
    return [
        live
        for live in region.facilities.values()
        if live.seh is not None
        and live.seh.status in EXPIRING
        and live.seh.expected_until is not None
        and live.seh.expected_until <= now
        and not live.seh.closed_by_hours
    ]


async def expire_stops(*, region: RegionLive, applier: Applier, registry: Registry, stream_maxlen: int, now: datetime | None = None) -> int:
    """Turn every stop (or closure) of the region whose expected end has passed into
    `stop_expired`, keeping its reason and expected end; returns how many this call expired.

    The system report is measured at the expected end (capacity.reports.service.apply_system_seh
    says how a hospital's own report still wins)."""
    now = now or datetime.now(UTC)
    expired = 0
    for live in expired_stops(region, now):
        facility = registry.facilities.get(live.facility_id)
        seh = live.seh
        if facility is None or seh is None or seh.expected_until is None:
            continue
        stop_expired = SehReport.model_construct(
            status=SehStatus.stop_expired.value, reason=seh.reason, reason_text=seh.reason_text, expected_until=seh.expected_until
        )
        try:
            applied = await apply_system_seh(
                applier=applier, facility=facility, live=live, seh=stop_expired, at=seh.expected_until, stream_maxlen=stream_maxlen
            )
        except LiveStateRebuilding:
            return expired
        if not applied:
            continue  # a new report or another worker came first: nothing to expire
        expired += 1
        log.info("SEH stop of %s passed its expected end unconfirmed: stop_expired", facility.id)
    return expired


class StaleWatch:
    """The staleness watchdog of one worker: one `stale` notice per facility whose figures
    passed their reporting interval, whichever worker sees it first."""

    def __init__(self, *, redis: aioredis.Redis, registry: Registry, stream_maxlen: int) -> None:
        self._redis = redis
        self._registry = registry
        self._stream_maxlen = stream_maxlen
        self._cursors: dict[str, int] = {}
        """Per region, the cursor as this worker last saw it: up to there, every notice went out."""

    def stale_at_ms(self, live: FacilityLive) -> int:
        facility = self._registry.facilities.get(live.facility_id)
        return facility.stale_at_ms(live.ts) if facility is not None else live.ts

    def count(self, region: RegionLive, now: datetime | None = None) -> int:
        """Facilities of the region whose newest report is past its interval (never-reported ones
        are not counted: they have no figures to go stale); also set as the metric."""
        now_ms = _ms(now or datetime.now(UTC))
        count = sum(1 for live in region.facilities.values() if live.reported and self.stale_at_ms(live) <= now_ms)
        metrics.STALE_FACILITIES.labels(region=region.region_id).set(count)
        return count

    async def notify_stale(self, region: RegionLive, now: datetime | None = None) -> int:
        """Put one `stale` notice on the region stream for each facility whose newest report
        passed its interval since the cursor; returns how many this call put out."""
        region_id, now_ms = region.region_id, _ms(now or datetime.now(UTC))
        seen = self._cursors.get(region_id)
        if seen is not None and not any(
            seen < self.stale_at_ms(live) <= now_ms and live.stale_since is None for live in region.facilities.values() if live.reported
        ):
            return 0  # nothing has gone stale since the cursor this worker saw: no need to ask Redis
        cursor = await text(self._redis, stale_cursor_key(region_id))
        if cursor is None:
            await self._redis.set(stale_cursor_key(region_id), now_ms, nx=True)  # a fresh start notifies nothing of the past
            self._cursors[region_id] = now_ms
            return 0
        if now_ms <= int(cursor):
            self._cursors[region_id] = int(cursor)
            return 0
        passed = await scored_range(self._redis, stale_key(region_id), min=f"({cursor}", max=now_ms)
        triples: list[str] = []
        for facility_id, stale_ms in passed:
            facility = self._registry.facilities.get(facility_id)
            interval_ms = (facility.reporting_interval_s if facility else 0) * 1000
            since = utc_iso(_at(stale_ms))
            notice = {
                "kind": "stale",
                "facility_id": facility_id,
                "region_id": region_id,
                "since": since,
                "last_measured_at": utc_iso(_at(stale_ms - interval_ms)),
            }
            triples += [facility_id, since, orjson.dumps(notice).decode()]
        keys = [stale_key(region_id), stale_cursor_key(region_id), stream_key(region_id), ready_key(region_id)]
        args: list[scripts.Arg] = [cursor, now_ms, self._stream_maxlen, facility_key(region_id, ""), *triples]
        added, after = await scripts.run(self._redis, scripts.STALE, keys, args)
        if after:
            self._cursors[region_id] = int(after)
        return int(added)
