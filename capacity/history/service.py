"""Reading the record: a facility's history, SEH stops per region, the audit trail; retention.

Stops are counted in local days (Europe/Amsterdam): "minutes a day on stop" is how
coordinators report them, and a stop that runs past midnight counts on both days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from capacity.auth.models import ApiKey
from capacity.db import Database
from capacity.domain import LOCAL_TIME, on_stop
from capacity.history.models import AuditEntry, Event
from capacity.history.schemas import (
    AuditItem,
    DayTotal,
    FacilityHistory,
    FacilityStopTotal,
    HistoryEvent,
    PressurePoint,
    PressureTrend,
    RegionStops,
    StopPeriod,
)
from regions.registry import Facility

LOCAL = LOCAL_TIME
MAX_EVENTS = 10_000


async def record_audit(
    *, db: Database, actor: str, action: str, target: str | None, detail: dict[str, Any], key_id: str | None = None
) -> None:
    async with db.session() as session:
        session.add(AuditEntry(at=datetime.now(UTC), key_id=key_id, actor=actor, action=action, target=target, detail=detail))
        await session.commit()


async def state_before(conn: AsyncConnection | AsyncSession, facility_id: str, moment: datetime | None = None) -> dict[str, Any] | None:
    """The facility's state after its newest event measured before `moment` (default: its newest);
    `conn` is a connection or session."""
    query = select(Event.state).where(Event.facility_id == facility_id)
    if moment is not None:
        query = query.where(Event.measured_at < moment)
    return await conn.scalar(query.order_by(Event.measured_at.desc()).limit(1))


async def facility_history(*, db: Database, facility: Facility, start: datetime, end: datetime) -> FacilityHistory:
    """Every event of the facility measured in [start, end), each with the state after it,
    and the state the range starts from."""
    async with db.session() as session:
        initial = await state_before(session, facility.id, start)
        rows = await session.execute(
            select(Event, ApiKey.label)
            .join(ApiKey, ApiKey.id == Event.key_id, isouter=True)
            .where(Event.facility_id == facility.id, Event.measured_at >= start, Event.measured_at < end)
            .order_by(Event.measured_at)
            .limit(MAX_EVENTS + 1)
        )
        found = rows.all()
    events = [
        HistoryEvent(
            event_id=row.Event.event_id,
            measured_at=row.Event.measured_at,
            applied_at=row.Event.applied_at,
            key_id=row.Event.key_id,
            key_label=row.label,
            seh=row.Event.body.get("seh"),
            units=row.Event.body.get("units", []),
            state=row.Event.state,
        )
        for row in found[:MAX_EVENTS]
    ]
    return FacilityHistory(
        facility_id=facility.id,
        region_id=facility.region_id,
        start=start,
        end=end,
        initial_state=initial,
        events=events,
        truncated=len(found) > MAX_EVENTS,
    )


async def pressure_trend(*, db: Database, facility: Facility, start: datetime, end: datetime) -> PressureTrend:
    """Every reported waiting time and NEDOCS score of the facility in [start, end), oldest first."""
    async with db.session() as session:
        rows = await session.scalars(
            select(Event)
            .where(Event.facility_id == facility.id, Event.measured_at >= start, Event.measured_at < end)
            .order_by(Event.measured_at)
            .limit(MAX_EVENTS)
        )
        points = []
        for event in rows:
            waiting, nedocs = event.body.get("waiting"), event.body.get("nedocs")
            if waiting is None and nedocs is None:
                continue
            points.append(
                PressurePoint(
                    measured_at=event.measured_at,
                    nedocs=nedocs["score"] if nedocs else None,
                    triage_min=waiting.get("triage_min") if waiting else None,
                    doctor_min=waiting.get("doctor_min") if waiting else None,
                )
            )
    return PressureTrend(facility_id=facility.id, start=start, end=end, points=points)


def _local_day_slices(start: datetime, end: datetime) -> list[tuple[date, float]]:
    """Split [start, end) at local midnights: (local date, minutes) for each day it touches."""
    slices = []
    cursor = start
    while cursor < end:
        local_day = cursor.astimezone(LOCAL).date()
        next_midnight = datetime.combine(local_day + timedelta(days=1), time(0), LOCAL).astimezone(UTC)
        until = min(end, next_midnight)
        slices.append((local_day, (until - cursor).total_seconds() / 60))
        cursor = until
    return slices


def stop_periods(
    *,
    facility_id: str,
    status_at_start: dict[str, Any] | None,
    changes: list[tuple[datetime, dict[str, Any]]],
    start: datetime,
    end: datetime,
) -> list[StopPeriod]:
    """The stops of one facility within [start, end) from its SEH reports in order.

    A stop (capacity.domain.on_stop: stop, closed or stop_expired) lasts from the first report
    that set it to the next report of a status that takes ambulances; one still going at `end`
    is cut there and marked ongoing. It keeps the reason it began with."""
    periods: list[StopPeriod] = []
    current: tuple[datetime, str | None, bool] | None = None

    def close(until: datetime, *, ongoing: bool) -> None:
        assert current is not None
        began, reason, clipped = current
        periods.append(
            StopPeriod(
                facility_id=facility_id,
                start=began,
                end=None if ongoing else until,
                minutes=round((until - began).total_seconds() / 60, 1),
                reason=reason,
                ongoing=ongoing,
                started_before_range=clipped,
            )
        )

    if status_at_start and on_stop(status_at_start.get("status")):
        current = (start, status_at_start.get("reason"), True)
    for measured_at, seh in changes:
        stopped = on_stop(seh.get("status"))
        if stopped and current is None:
            current = (measured_at, seh.get("reason"), False)
        elif not stopped and current is not None:
            close(measured_at, ongoing=False)
            current = None
    if current is not None:
        close(end, ongoing=True)
    return periods


def day_totals(periods: list[StopPeriod], *, end: datetime) -> list[DayTotal]:
    minutes: dict[tuple[str, date], float] = defaultdict(float)
    counts: dict[tuple[str, date], int] = defaultdict(int)
    for period in periods:
        for day, part in _local_day_slices(period.start, period.end or end):
            minutes[(period.facility_id, day)] += part
            counts[(period.facility_id, day)] += 1
    return [DayTotal(facility_id=f, date=d, stops=counts[(f, d)], minutes=round(minutes[(f, d)], 1)) for f, d in sorted(minutes)]


async def region_stops(*, db: Database, facilities: Sequence[Facility], region_id: str, start: datetime, end: datetime) -> RegionStops:
    """Every SEH stop of the region's facilities in [start, end), with totals per facility and local day."""
    periods: list[StopPeriod] = []
    async with db.engine.connect() as conn:
        for facility in facilities:
            before = await state_before(conn, facility.id, start)
            rows = await conn.execute(
                select(Event.measured_at, Event.body)
                .where(
                    and_(Event.facility_id == facility.id, Event.seh_status.is_not(None)),
                    Event.measured_at >= start,
                    Event.measured_at < end,
                )
                .order_by(Event.measured_at)
            )
            changes = [(r.measured_at, r.body["seh"]) for r in rows]
            periods += stop_periods(
                facility_id=facility.id, status_at_start=(before or {}).get("seh"), changes=changes, start=start, end=end
            )
    days = day_totals(periods, end=end)
    span_days = max((end - start).total_seconds() / 86400, 1 / 1440)
    per_facility = []
    for facility in facilities:
        mine = [p for p in periods if p.facility_id == facility.id]
        if mine:
            total = sum(p.minutes for p in mine)
            per_facility.append(
                FacilityStopTotal(
                    facility_id=facility.id,
                    name=facility.name,
                    stops=len(mine),
                    minutes=round(total, 1),
                    minutes_per_day=round(total / span_days, 1),
                )
            )
    return RegionStops(
        region_id=region_id, start=start, end=end, timezone=str(LOCAL), stops=periods, per_day=days, per_facility=per_facility
    )


async def audit_trail(
    *, db: Database, start: datetime, end: datetime, key_id: str | None = None, facility_id: str | None = None, limit: int = 1000
) -> list[AuditItem]:
    """Who changed what and when: every report (from the events) and every other write."""
    items: list[AuditItem] = []
    async with db.engine.connect() as conn:
        query = (
            select(Event.applied_at, Event.key_id, ApiKey.label, Event.facility_id, Event.event_id, Event.body)
            .join(ApiKey, ApiKey.id == Event.key_id, isouter=True)
            .where(Event.applied_at >= start, Event.applied_at < end)
        )
        if key_id:
            query = query.where(Event.key_id == key_id)
        if facility_id:
            query = query.where(Event.facility_id == facility_id)
        for row in await conn.execute(query.order_by(Event.applied_at.desc()).limit(limit)):
            items.append(
                AuditItem(
                    at=row.applied_at,
                    key_id=row.key_id,
                    actor=row.label or row.key_id,
                    action="report",
                    target=row.facility_id,
                    event_id=row.event_id,
                    detail={"seh": row.body.get("seh"), "units": row.body.get("units", [])},
                )
            )
        if facility_id is None:
            others = select(AuditEntry).where(AuditEntry.at >= start, AuditEntry.at < end)
            if key_id:
                others = others.where(AuditEntry.key_id == key_id)
            # A Core connection answers rows of the table's columns (`.scalars()` would give only the ids).
            for entry in await conn.execute(others.order_by(AuditEntry.at.desc()).limit(limit)):
                items.append(
                    AuditItem(
                        at=entry.at, key_id=entry.key_id, actor=entry.actor, action=entry.action, target=entry.target, detail=entry.detail
                    )
                )
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:limit]


async def prune_history(*, db: Database, older_than: datetime) -> int:
    """Delete events measured before `older_than`, except each facility's newest one, which
    the live state is rebuilt from."""
    newest = select(Event.facility_id, func.max(Event.measured_at).label("newest")).group_by(Event.facility_id).subquery()
    keep = select(Event.region_id, Event.event_id).join(
        newest, and_(Event.facility_id == newest.c.facility_id, Event.measured_at == newest.c.newest)
    )
    async with db.engine.begin() as conn:
        kept = {(r.region_id, r.event_id) for r in await conn.execute(keep)}
        candidates = await conn.execute(select(Event.region_id, Event.event_id).where(Event.measured_at < older_than))
        doomed = [(r.region_id, r.event_id) for r in candidates if (r.region_id, r.event_id) not in kept]
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            for region_id in {r for r, _ in chunk}:
                ids = [e for r, e in chunk if r == region_id]
                await conn.execute(delete(Event).where(Event.region_id == region_id, Event.event_id.in_(ids)))
    return len(doomed)
