"""Applying a report: build the canonical event, run the one atomic script, say what happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import orjson

from capacity import metrics
from capacity.auth.ratelimit import Charge, free_of_charge
from capacity.domain import utc_iso
from capacity.errors import LiveStateRebuilding
from capacity.history.log import EventLog
from capacity.history.models import EventRecord
from capacity.reports.applier import Applier
from capacity.reports.models import (
    AppliedNedocs,
    AppliedSeh,
    AppliedStop,
    AppliedUnit,
    AppliedWaiting,
    CapabilityStop,
    Report,
    ReportResult,
    SehReport,
)
from capacity.state import NO_SEH, SYSTEM_KEY, FacilityLive, digest_of, stop_mark
from capacity.store.entries import state_from_hash
from capacity.store.keys import HASH_FIELDS, UNIT_PREFIX, facilities_key, facility_key, ready_key, stale_key, stream_key
from capacity.store.scripts import Arg
from regions.registry import Facility


class ReportSuperseded(Exception):
    """A system report found the status it was to replace already replaced; nothing was applied."""


class ReportLimited(Exception):
    """The sender's key is over its rate limit; nothing was applied."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"rate limit of this key reached; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class ReportRefused(Exception):
    """The report was valid but is not newer than what is stored; nothing was applied."""

    def __init__(self, message: str, *, stored_measured_at: datetime, event_id: str | None) -> None:
        super().__init__(message)
        self.stored_measured_at = stored_measured_at
        self.event_id = event_id


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


def _stop(stop: SehReport | CapabilityStop, measured: str) -> dict[str, Any]:
    return {
        "reason": _plain(stop.reason),
        "reason_text": stop.reason_text,
        "expected_until": utc_iso(stop.expected_until) if stop.expected_until else None,
        "measured_at": measured,
    }


def canonical_event(*, facility: Facility, report: Report, key_id: str) -> dict[str, Any]:
    """The event as stored on the stream: UTC times, units in a fixed order, who sent it."""
    measured = utc_iso(report.measured_at)
    seh = None if report.seh is None else {"status": _plain(report.seh.status), **_stop(report.seh, measured)}
    units = [
        {"type": u.type.value, "staffed": u.staffed, "occupied": u.occupied, "available": u.available, "measured_at": measured}
        for u in sorted(report.units or [], key=lambda u: u.type.value)
    ]
    event: dict[str, Any] = {
        "facility_id": facility.id,
        "region_id": facility.region_id,
        "measured_at": measured,
        "key_id": key_id,
        "seh": seh,
        "units": units,
    }
    if report.capability_stops is not None:
        stops = sorted(report.capability_stops, key=lambda s: s.capability.value)
        event["capability_stops"] = [{"capability": s.capability.value, **_stop(s, measured)} for s in stops]
    if report.waiting is not None:
        event["waiting"] = {"triage_min": report.waiting.triage_min, "doctor_min": report.waiting.doctor_min, "measured_at": measured}
    if report.nedocs is not None:
        event["nedocs"] = {"score": report.nedocs, "measured_at": measured}
    return event


@dataclass(frozen=True)
class Prepared:
    """A report turned into what the scripts write: the event, its time, digest and hash fields."""

    facility: Facility
    report: Report
    event: dict[str, Any]
    event_json: bytes
    ts_ms: int
    digest: str
    fields: list[str | bytes]
    stop_mark: str
    stale_at_ms: int

    @property
    def region_id(self) -> str:
        return self.facility.region_id


def prepare(*, facility: Facility, report: Report, key_id: str) -> Prepared:
    event = canonical_event(facility=facility, report=report, key_id=key_id)
    fields: list[str | bytes] = []
    if event["seh"] is not None:
        fields += ["seh", orjson.dumps(event["seh"])]
    for unit in event["units"]:
        figures = {k: unit[k] for k in ("staffed", "occupied", "available", "measured_at")}
        fields += [UNIT_PREFIX + unit["type"], orjson.dumps(figures)]
    for part, name in HASH_FIELDS.items():
        if part in event:
            fields += [name, orjson.dumps(event[part])]
    ts_ms = int(report.measured_at.timestamp() * 1000)
    stale_at = facility.stale_at_ms(ts_ms)
    seh = event["seh"]
    mark = stop_mark(seh["status"] if seh else None, seh["measured_at"] if seh else "")
    return Prepared(facility, report, event, orjson.dumps(event), ts_ms, digest_of(event), fields, mark, stale_at)


def _refusal(outcome: str, prepared: Prepared, stored_ts: str, event_id: str | None) -> ReportRefused:
    metrics.REPORTS_REJECTED.labels(reason=outcome).inc()
    stored = datetime.fromtimestamp(int(stored_ts) / 1000, UTC)
    measured = prepared.event["measured_at"]
    if outcome == "older":
        message = f"measured_at {measured} is older than the stored report measured at {utc_iso(stored)}; nothing applied"
    else:
        message = f"a different report measured at {measured} was already applied; nothing applied"
    return ReportRefused(message, stored_measured_at=stored, event_id=event_id)


def _not_ready(prepared: Prepared) -> LiveStateRebuilding:
    return LiveStateRebuilding(f"the live state of region {prepared.region_id} is being rebuilt; nothing applied, retry shortly")


async def _recorded(prepared: Prepared, event_id: str, state: list[str], record: EventLog) -> None:
    started = time.perf_counter()
    await record.write(
        EventRecord(
            region_id=prepared.region_id,
            event_id=event_id,
            facility_id=prepared.facility.id,
            measured_at=prepared.report.measured_at,
            key_id=prepared.event["key_id"],
            seh_status=prepared.event["seh"]["status"] if prepared.event["seh"] else None,
            digest=prepared.digest,
            body=prepared.event,
            state=state_from_hash(dict(zip(state[::2], state[1::2], strict=True))),
        )
    )
    metrics.RECORD_SECONDS.observe(time.perf_counter() - started)


def _result(prepared: Prepared, event_id: str, outcome: str) -> ReportResult:
    if outcome == "applied":
        metrics.REPORTS_ACCEPTED.labels(region=prepared.region_id).inc()
    event = prepared.event
    return ReportResult(
        event_id=event_id,
        facility_id=prepared.facility.id,
        region_id=prepared.region_id,
        measured_at=prepared.report.measured_at,
        duplicate=outcome == "duplicate",
        seh=AppliedSeh(**event["seh"]) if event["seh"] else None,
        units=[AppliedUnit(**u) for u in event["units"]],
        capability_stops=[AppliedStop(**s) for s in event["capability_stops"]] if "capability_stops" in event else None,
        waiting=AppliedWaiting(**event["waiting"]) if "waiting" in event else None,
        nedocs=AppliedNedocs(**event["nedocs"]) if "nedocs" in event else None,
    )


async def apply_report(
    *,
    applier: Applier,
    facility: Facility,
    report: Report,
    key_id: str,
    stream_maxlen: int,
    record: EventLog | None = None,
    charge: Charge | None = None,
    replaces_seh: str = "",
) -> ReportResult:
    """Apply `report` for `facility` atomically, or raise ReportRefused when it is not the newest.

    `charge` takes the sender's request token in the same script (one round trip for both;
    ReportLimited when it is over its limit). With `record`, return only once the event is
    committed to SQL as well (acknowledged means durable); a failure there raises
    DatabaseUnavailable, and the sender's retry of the same report is answered as a duplicate
    once it is recorded. `replaces_seh` (capacity.state.SehFigure.version) makes the report
    apply only while that is still the stored SEH status: ReportSuperseded otherwise.
    """
    prepared = prepare(facility=facility, report=report, key_id=key_id)
    region = facility.region_id
    charge = charge or free_of_charge(region)
    keys = [facility_key(region, facility.id), stream_key(region), ready_key(region), stale_key(region), facilities_key(region), charge.key]
    args: list[Arg] = [charge.per_s, charge.burst, prepared.ts_ms, prepared.digest, stream_maxlen, facility.id, prepared.event_json]
    args += [replaces_seh, prepared.stop_mark, prepared.stale_at_ms, "1" if key_id == SYSTEM_KEY else "0", *prepared.fields]
    started = time.perf_counter()
    outcome, *answer = await applier.apply(keys, args, region_id=region)
    metrics.APPLY_SECONDS.observe(time.perf_counter() - started)
    if outcome == "limited":
        metrics.RATE_LIMITED.labels(bucket="requests").inc()
        raise ReportLimited(max(1, -(-int(answer[0]) // 1000)))
    if outcome == "not_ready":
        raise _not_ready(prepared)
    stored_ts, event_id, *state = answer
    if outcome == "superseded":
        raise ReportSuperseded(f"the SEH status of {facility.id} changed meanwhile; nothing applied")
    if outcome in ("older", "conflict"):
        raise _refusal(outcome, prepared, stored_ts, event_id)
    applier.wrote(region, event_id)
    if record is not None:
        await _recorded(prepared, event_id, state, record)
    return _result(prepared, event_id, outcome)


async def apply_system_seh(
    *, applier: Applier, facility: Facility, live: FacilityLive, seh: SehReport, at: datetime, stream_maxlen: int
) -> bool:
    """Set an SEH status the service decides itself (a stop's expiry, a closure by opening hours);
    False when the hospital or another worker came first.

    It is measured at `at`, or just after the facility's newest report if that is later, so a
    report the hospital sends now is newer and wins; and it applies only while the SEH status it
    replaces is still the stored one, so two workers make one event. LiveStateRebuilding passes
    through. Recorded in SQL by the backstop, like every stream event."""
    measured = max(at, live.measured_at + timedelta(milliseconds=1)) if live.measured_at else at
    report = Report.model_construct(measured_at=measured, seh=seh, units=None, capability_stops=None, waiting=None, nedocs=None)
    replaces = live.seh.version if live.seh is not None else NO_SEH
    try:
        await apply_report(
            applier=applier, facility=facility, report=report, key_id=SYSTEM_KEY, stream_maxlen=stream_maxlen, replaces_seh=replaces
        )
    except (ReportSuperseded, ReportRefused):
        return False
    return True


class BatchRefused(Exception):
    """One report of a document cannot be applied; `index` says which (0-based). Nothing was
    applied, except on a Redis Cluster the whole regions in `applied_regions`, before it."""

    def __init__(self, index: int, cause: ReportRefused | LiveStateRebuilding, *, applied_regions: Sequence[str] = ()) -> None:
        super().__init__(str(cause))
        self.index = index
        self.cause = cause
        self.applied_regions = list(applied_regions)


class BatchInterrupted(Exception):
    """Redis or SQL failed part-way through a document on a Redis Cluster: the regions in
    `applied_regions` were applied (and recorded), the rest not."""

    def __init__(self, *, applied_regions: Sequence[str], pending_regions: Sequence[str], cause: Exception) -> None:
        super().__init__(f"{cause.__class__.__name__}: {cause}")
        self.applied_regions = list(applied_regions)
        self.pending_regions = list(pending_regions)
        self.cause = cause


async def apply_reports(
    *,
    applier: Applier,
    items: list[tuple[Facility, Report]],
    key_id: str,
    stream_maxlen: int,
    record: EventLog | None = None,
) -> list[ReportResult]:
    """Apply the reports of one document (one per facility) atomically, recorded like single reports.

    On one Redis (Sentinel's primary too) that is one script over every region's keys: all, or
    none (BatchRefused naming the report that stopped it). A Redis Cluster keeps each region in a
    slot of its own and no script spans slots, so there the document is applied one region at a
    time, in the order its regions first appear, each region all or nothing. A refusal or a failure
    in one region leaves the regions before it applied (BatchRefused / BatchInterrupted name them)
    and nothing after; sending the document again is safe, as what was applied answers duplicate."""
    prepared = [prepare(facility=f, report=r, key_id=key_id) for f, r in items]
    if not applier.per_region:
        return await _apply_batch(applier=applier, prepared=prepared, stream_maxlen=stream_maxlen, record=record)
    by_region: dict[str, list[int]] = {}
    for index, p in enumerate(prepared):
        by_region.setdefault(p.region_id, []).append(index)
    results: dict[int, ReportResult] = {}
    applied: list[str] = []
    for region_id, indices in by_region.items():
        try:
            part = await _apply_batch(applier=applier, prepared=[prepared[i] for i in indices], stream_maxlen=stream_maxlen, record=record)
        except BatchRefused as refused:
            raise BatchRefused(indices[refused.index], refused.cause, applied_regions=applied) from None
        except Exception as exc:
            if not applied:
                raise
            pending = list(by_region)[len(applied) :]
            raise BatchInterrupted(applied_regions=applied, pending_regions=pending, cause=exc) from exc
        results.update(zip(indices, part, strict=True))
        applied.append(region_id)
    return [results[i] for i in range(len(prepared))]


async def _apply_batch(*, applier: Applier, prepared: list[Prepared], stream_maxlen: int, record: EventLog | None) -> list[ReportResult]:
    """apply_batch.lua over `prepared`: all applied and recorded, or BatchRefused."""
    keys: list[str] = []
    args: list[str | bytes | int] = [len(prepared), stream_maxlen]
    for p in prepared:
        region = p.region_id
        keys += [facility_key(region, p.facility.id), stream_key(region), ready_key(region), stale_key(region)]
        args += [p.ts_ms, p.digest, p.facility.id, p.event_json, p.stop_mark, p.stale_at_ms, len(p.fields), *p.fields]
    keys += [facilities_key(p.region_id) for p in prepared]
    started = time.perf_counter()
    outcome, *rest = await applier.batch(keys, args)
    metrics.APPLY_SECONDS.observe(time.perf_counter() - started)
    if outcome != "applied":
        index, stored_ts, event_id = int(rest[0]) - 1, rest[1], rest[2]
        cause = _not_ready(prepared[index]) if outcome == "not_ready" else _refusal(outcome, prepared[index], stored_ts, event_id)
        raise BatchRefused(index, cause)
    answers = rest[0]
    for p, a in zip(prepared, answers, strict=True):
        applier.wrote(p.region_id, a[2])
    if record is not None:
        await asyncio.gather(*(_recorded(p, a[2], a[3:], record) for p, a in zip(prepared, answers, strict=True)))
    return [_result(p, a[2], a[0]) for p, a in zip(prepared, answers, strict=True)]
