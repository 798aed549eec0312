from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from capacity.auth.deps import Administrator, FacilityHistoryReader, FacilityReader, RegionHistoryReader
from capacity.deps import DatabaseDep, RegistryDep
from capacity.history.schemas import AuditItem, FacilityHistory, PressureTrend, RegionStops, TimeRange
from capacity.history.service import audit_trail, facility_history, pressure_trend, region_stops

router = APIRouter(prefix="/api/v1", tags=["history"])

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}}


def _csv(name: str, header: list[str], rows: Iterable[Iterable[object]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return Response(
        buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
    )


@router.get("/facilities/{facility_id}/history", response_model=FacilityHistory, responses=CSV_RESPONSE)
async def get_history(access: FacilityHistoryReader, period: Annotated[TimeRange, Query()], db: DatabaseDep) -> FacilityHistory | Response:
    """Every report of the facility in the range, with the state after each (CSV: one row per figure set)."""
    start, end = period.bounds
    history = await facility_history(db=db, facility=access.facility, start=start, end=end)
    if period.format == "json":
        return history
    rows = []
    for e in history.events:
        if e.seh:
            rows.append(
                [
                    e.event_id,
                    e.measured_at.isoformat(),
                    e.applied_at.isoformat(),
                    e.key_id,
                    "seh",
                    e.seh.get("status"),
                    e.seh.get("reason"),
                    e.seh.get("expected_until"),
                    None,
                    None,
                    None,
                ]
            )
        for u in e.units:
            rows.append(
                [
                    e.event_id,
                    e.measured_at.isoformat(),
                    e.applied_at.isoformat(),
                    e.key_id,
                    u["type"],
                    None,
                    None,
                    None,
                    u.get("staffed"),
                    u.get("occupied"),
                    u.get("available"),
                ]
            )
    header = [
        "event_id",
        "measured_at",
        "applied_at",
        "key_id",
        "figure",
        "seh_status",
        "seh_reason",
        "seh_expected_until",
        "staffed",
        "occupied",
        "available",
    ]
    return _csv(f"history-{access.facility.id}", header, rows)


@router.get("/regions/{region_id}/stops", response_model=RegionStops, responses=CSV_RESPONSE)
async def get_stops(
    access: RegionHistoryReader,
    period: Annotated[TimeRange, Query()],
    db: DatabaseDep,
    registry: RegistryDep,
    table: Annotated[
        str, Query(pattern="^(stops|days)$", description="With format=csv: the stops, or totals per facility and day.")
    ] = "stops",
) -> RegionStops | Response:
    """Every SEH stop in the region with start, end, duration and reason; per facility and local day: count and minutes."""
    start, end = period.bounds
    stops = await region_stops(
        db=db,
        facilities=registry.by_region.get(access.region.id, ()),
        region_id=access.region.id,
        start=start,
        end=end,
    )
    if period.format == "json":
        return stops
    if table == "days":
        return _csv(
            f"stops-per-day-{access.region.id}",
            ["facility_id", "date", "stops", "minutes"],
            ([d.facility_id, d.date.isoformat(), d.stops, d.minutes] for d in stops.per_day),
        )
    header = ["facility_id", "start", "end", "minutes", "reason", "ongoing", "started_before_range"]
    return _csv(
        f"stops-{access.region.id}",
        header,
        (
            [
                s.facility_id,
                s.start.isoformat(),
                s.end.isoformat() if s.end else None,
                s.minutes,
                s.reason,
                s.ongoing,
                s.started_before_range,
            ]
            for s in stops.stops
        ),
    )


@router.get("/audit")
async def get_audit(
    _admin: Administrator,
    period: Annotated[TimeRange, Query()],
    db: DatabaseDep,
    key_id: Annotated[str | None, Query(max_length=24)] = None,
    facility_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditItem]:
    """Who (key id and label, never the secret) changed what and when: reports and every other write."""
    start, end = period.bounds
    return await audit_trail(db=db, start=start, end=end, key_id=key_id, facility_id=facility_id)


@router.get("/facilities/{facility_id}/pressure")
async def get_pressure(
    access: FacilityReader, db: DatabaseDep, hours: Annotated[float, Query(gt=0, le=48, description="How far back.")] = 6
) -> PressureTrend:
    """The facility's reported waiting times and NEDOCS scores over the last hours, for a trend line."""
    end = datetime.now(UTC)
    return await pressure_trend(db=db, facility=access.facility, start=end - timedelta(hours=hours), end=end)
