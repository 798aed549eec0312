"""Applying a report: build the canonical event, run the one atomic script, say what happened."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from capacity import metrics
from capacity.domain import utc_iso
from capacity.errors import LiveStateRebuilding
from capacity.history.log import EventLog
from capacity.history.models import EventRecord
from capacity.reports.models import AppliedSeh, AppliedUnit, Report, ReportResult
from capacity.store import facility_key, load_script, ready_key, state_from_hash, stream_key
from regions.registry import Facility

APPLY_LUA = load_script("capacity.reports", "apply.lua")


class ReportRefused(Exception):
    """The report was valid but is not newer than what is stored; nothing was applied."""

    def __init__(self, message: str, *, stored_measured_at: datetime, event_id: str | None) -> None:
        super().__init__(message)
        self.stored_measured_at = stored_measured_at
        self.event_id = event_id


@dataclass(frozen=True)
class Applier:
    """Holds the registered script so every call is a single EVALSHA."""

    script: object

    @classmethod
    def register(cls, redis: aioredis.Redis) -> Applier:
        return cls(script=redis.register_script(APPLY_LUA))


def canonical_event(*, facility: Facility, report: Report, key_id: str) -> dict:
    """The event as stored on the stream: UTC times, units in a fixed order, who sent it."""
    measured = utc_iso(report.measured_at)
    seh = None
    if report.seh is not None:
        seh = {
            "status": report.seh.status,
            "reason": report.seh.reason,
            "expected_until": utc_iso(report.seh.expected_until) if report.seh.expected_until else None,
            "measured_at": measured,
        }
    units = [
        {"type": u.type.value, "staffed": u.staffed, "occupied": u.occupied, "available": u.available, "measured_at": measured}
        for u in sorted(report.units or [], key=lambda u: u.type.value)
    ]
    return {
        "facility_id": facility.id,
        "region_id": facility.region_id,
        "measured_at": measured,
        "key_id": key_id,
        "seh": seh,
        "units": units,
    }


def digest_of(event: dict) -> str:
    """Identifies the report's content (not who sent it), to tell a retry from a conflicting report."""
    content = {k: event[k] for k in ("measured_at", "seh", "units")}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def apply_report(
    *,
    applier: Applier,
    facility: Facility,
    report: Report,
    key_id: str,
    stream_maxlen: int,
    record: EventLog | None = None,
) -> ReportResult:
    """Apply `report` for `facility` atomically, or raise ReportRefused when it is not the newest.

    With `record`, return only once the event is committed to SQL as well (acknowledged
    means durable); a failure there raises DatabaseUnavailable, and the sender's retry of
    the same report is answered as a duplicate once it is recorded.
    """
    event = canonical_event(facility=facility, report=report, key_id=key_id)
    ts_ms = int(report.measured_at.timestamp() * 1000)
    fields: list[str | bytes] = []
    if event["seh"] is not None:
        fields += ["seh", orjson.dumps(event["seh"])]
    for unit in event["units"]:
        figures = {k: unit[k] for k in ("staffed", "occupied", "available", "measured_at")}
        fields += [f"u:{unit['type']}", orjson.dumps(figures)]
    started = time.perf_counter()
    digest = digest_of(event)
    outcome, stored_ts, event_id, *state = await applier.script(
        keys=[facility_key(facility.region_id, facility.id), stream_key(facility.region_id), ready_key(facility.region_id)],
        args=[ts_ms, digest, stream_maxlen, facility.id, orjson.dumps(event), *fields],
    )
    metrics.APPLY_SECONDS.observe(time.perf_counter() - started)
    if outcome == "not_ready":
        raise LiveStateRebuilding(f"the live state of region {facility.region_id} is being rebuilt; nothing applied, retry shortly")
    if outcome in ("older", "conflict"):
        metrics.REPORTS_REJECTED.labels(reason=outcome).inc()
        stored = datetime.fromtimestamp(int(stored_ts) / 1000, UTC)
        if outcome == "older":
            message = f"measured_at {event['measured_at']} is older than the stored report measured at {utc_iso(stored)}; nothing applied"
        else:
            message = f"a different report measured at {event['measured_at']} was already applied; nothing applied"
        raise ReportRefused(message, stored_measured_at=stored, event_id=event_id)
    if record is not None:
        stored = dict(zip(state[::2], state[1::2], strict=True))
        started = time.perf_counter()
        await record.write(
            EventRecord(
                region_id=facility.region_id,
                event_id=event_id,
                facility_id=facility.id,
                measured_at=report.measured_at,
                key_id=key_id,
                seh_status=event["seh"]["status"] if event["seh"] else None,
                digest=digest,
                body=event,
                state=state_from_hash(stored),
            )
        )
        metrics.RECORD_SECONDS.observe(time.perf_counter() - started)
    if outcome == "applied":
        metrics.REPORTS_ACCEPTED.labels(region=facility.region_id).inc()
    return ReportResult(
        event_id=event_id,
        facility_id=facility.id,
        region_id=facility.region_id,
        measured_at=report.measured_at,
        duplicate=outcome == "duplicate",
        seh=AppliedSeh(**event["seh"]) if event["seh"] else None,
        units=[AppliedUnit(**u) for u in event["units"]],
    )
