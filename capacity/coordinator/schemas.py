"""What the coordinator's routes take and answer: the quarterly stop report and the series.

A quarter is a Dutch (Europe/Amsterdam) calendar quarter, as LNAZ reports them: `2026Q4` is
[2026-10-01 00:00, 2027-01-01 00:00) local time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from capacity.domain import EARLIEST, LATEST, LOCAL_TIME, UnitType
from capacity.history.schemas import Period

QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
STEPS: dict[str, int] = {"1h": 1, "3h": 3, "6h": 6, "12h": 12, "1d": 24}
"""Each step in whole hours; buckets are aligned to `from` floored to the hour."""
Step = Literal["1h", "3h", "6h", "12h", "1d"]


def quarter_bounds(*, quarter: str) -> tuple[datetime, datetime]:
    """[start, end) of a local quarter such as `2026Q4`, in UTC (ValueError when malformed)."""
    found = QUARTER.match(quarter)
    if found is None:
        raise ValueError("'quarter' is a year and a quarter such as 2026Q4")
    year, number = int(found[1]), int(found[2])
    if not EARLIEST.year < year < LATEST.year:
        raise ValueError(f"'quarter' must lie between {EARLIEST.year} and {LATEST.year}")
    start = datetime(year, 3 * number - 2, 1, tzinfo=LOCAL_TIME)
    end = datetime(year + 1, 1, 1, tzinfo=LOCAL_TIME) if number == 4 else datetime(year, 3 * number + 1, 1, tzinfo=LOCAL_TIME)
    return start.astimezone(UTC), end.astimezone(UTC)


def current_quarter(*, now: datetime) -> str:
    local = now.astimezone(LOCAL_TIME)
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


def _period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """`from`/`to` checked as every history route checks them (366 days at most)."""
    try:
        return Period.model_validate({"from": start, "to": end}).bounds
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


class ReportQuery(BaseModel):
    """A quarter, or `from`/`to` (not both); neither: the current quarter."""

    model_config = ConfigDict(populate_by_name=True)

    quarter: str | None = Field(default=None, max_length=8, description="A local quarter such as 2026Q4.")
    start: AwareDatetime | None = Field(default=None, alias="from")
    end: AwareDatetime | None = Field(default=None, alias="to")
    format: Literal["json", "csv"] = "json"

    @model_validator(mode="after")
    def _bounds(self) -> ReportQuery:
        if self.quarter is not None and (self.start is not None or self.end is not None):
            raise ValueError("give 'quarter' or 'from'/'to', not both")
        if self.start is None and self.end is None:
            self.start, self.end = quarter_bounds(quarter=self.quarter or current_quarter(now=datetime.now(UTC)))
        else:
            self.start, self.end = _period(self.start, self.end)
        return self

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        assert self.start is not None and self.end is not None  # _bounds sets both
        return self.start, self.end


class SeriesQuery(Period):
    """`from`/`to` (366 days at most; default the last day) and the step of the buckets."""

    step: Step = "1h"
    facility_id: str | None = Field(default=None, max_length=64, description="Only this facility of the region.")


class CapacitySeriesQuery(SeriesQuery):
    unit: UnitType


class NationalFigure(BaseModel):
    minutes_per_day: float
    period: str
    source: str


class ReportTotals(BaseModel):
    stops: int
    minutes: float
    minutes_per_day: float
    longest_min: float
    closed_by_hours_min: float = Field(description="Closed by the SEH's declared opening hours: planned, not a stop.")
    reasons: dict[str, float] = Field(description="Minutes on stop per reason the stop began with ('unknown': none given).")


class RegionTotals(ReportTotals):
    sehs: int = Field(description="SEHs of the region that take ambulances; one without stops counts as zero in the mean.")


class FacilityTotals(ReportTotals):
    facility_id: str
    name: str
    ongoing: bool = Field(description="A stop counted here is still going on.")


class DayMinutes(BaseModel):
    date: str = Field(description="Local date (Europe/Amsterdam).")
    minutes: dict[str, float] = Field(description="Minutes on stop per facility that had any that day.")


class StopReport(BaseModel):
    """The LNAZ-style report: minutes an average SEH of the region was on stop per day."""

    region_id: str
    start: datetime
    end: datetime
    counted_until: datetime = Field(description="min(end, now): a period still running is counted up to now.")
    days: float = Field(description="Local days counted (a day of 23 or 25 hours is one day).")
    timezone: str
    national: NationalFigure
    region: RegionTotals
    facilities: list[FacilityTotals]
    per_day: list[DayMinutes]


class CapacityPoint(BaseModel):
    at: str
    free: int | None = Field(description="Sum of the known last free places; None when no facility knew (a gap, never 0).")
    staffed: int | None
    unknown: int = Field(description="Facilities whose last figure in the bucket was unknown.")
    reported: int = Field(description="Facilities with a figure in the bucket.")


class CapacitySeries(BaseModel):
    region_id: str
    unit: str
    start: str
    end: str
    step: str
    facilities: list[str] = Field(description="The facilities that reported this unit in the range.")
    points: list[CapacityPoint]


class PressureSeriesPoint(BaseModel):
    at: str
    nedocs: int | None
    nedocs_max: int | None
    triage_min: int | None
    doctor_min: int | None


class FacilityPressure(BaseModel):
    facility_id: str
    name: str
    points: list[PressureSeriesPoint] = Field(description="Only the buckets in which the SEH reported pressure.")


class PressureSeries(BaseModel):
    region_id: str
    start: str
    end: str
    step: str
    facilities: list[FacilityPressure]
