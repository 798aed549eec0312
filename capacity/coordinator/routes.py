"""The coordinator's view of a region over time: the quarterly stop report and the chart series."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel

from capacity.auth.deps import RegionCoordinator
from capacity.coordinator.schemas import CapacitySeries, CapacitySeriesQuery, PressureSeries, ReportQuery, SeriesQuery, StopReport
from capacity.coordinator.service import NotInRegion, capacity_series, pressure_series, region_facility, report_csv_rows, stop_report
from capacity.deps import DatabaseDep, RegistryDep

router = APIRouter(prefix="/api/v1/regions/{region_id}", tags=["coordinator"])

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}}


def _refused(exc: NotInRegion) -> HTTPException:
    detail = [{"loc": ["query", "facility_id"], "msg": str(exc), "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


@router.get("/stops/report", response_model=StopReport, responses=CSV_RESPONSE)
async def get_stop_report(
    access: RegionCoordinator, query: Annotated[ReportQuery, Query()], db: DatabaseDep, registry: RegistryDep
) -> StopReport | Response:
    """LNAZ-style: per SEH the stops, minutes, mean minutes a day, longest stop and reasons in a
    local quarter (or `from`/`to`), the region's mean beside the national figure, minutes per day."""
    start, end = query.bounds
    region_id = access.region.id
    report = await stop_report(
        db=db, region_id=region_id, facilities=registry.by_region.get(region_id, ()), start=start, end=end, now=datetime.now(UTC)
    )
    if query.format == "json":
        return report
    header, rows = report_csv_rows(report=report)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    name = f"stops-report-{region_id}-{start.date().isoformat()}"
    return Response(
        buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
    )


def _json(answer: BaseModel) -> Response:
    """A series as pydantic's own serializer writes it: FastAPI would validate every point again
    (a 90-day hourly pressure series is 26,000 of them)."""
    return Response(answer.model_dump_json(), media_type="application/json")


@router.get("/capacity/series", response_model=CapacitySeries)
async def get_capacity_series(
    access: RegionCoordinator, query: Annotated[CapacitySeriesQuery, Query()], db: DatabaseDep, registry: RegistryDep
) -> Response:
    """Per step the region's summed free and staffed places of one unit type (unknown kept apart,
    a gap when nobody knew) and how many facilities reported: from the hourly rollups."""
    start, end = query.bounds
    try:
        region_facility(registry=registry, region_id=access.region.id, facility_id=query.facility_id)
    except NotInRegion as exc:
        raise _refused(exc) from exc
    series = await capacity_series(
        db=db, region_id=access.region.id, unit=query.unit.value, start=start, end=end, step=query.step, facility_id=query.facility_id
    )
    return _json(series)


@router.get("/pressure/series", response_model=PressureSeries)
async def get_pressure_series(
    access: RegionCoordinator, query: Annotated[SeriesQuery, Query()], db: DatabaseDep, registry: RegistryDep
) -> Response:
    """Per SEH and step its last NEDOCS and waiting times and its highest NEDOCS: from the hourly rollups."""
    start, end = query.bounds
    region_id = access.region.id
    try:
        region_facility(registry=registry, region_id=region_id, facility_id=query.facility_id)
    except NotInRegion as exc:
        raise _refused(exc) from exc
    series = await pressure_series(
        db=db,
        region_id=region_id,
        facilities=registry.by_region.get(region_id, ()),
        start=start,
        end=end,
        step=query.step,
        facility_id=query.facility_id,
    )
    return _json(series)
