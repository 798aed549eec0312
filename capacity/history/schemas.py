"""What the history, stops and audit routes answer, and the time range they take."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from capacity.domain import EARLIEST, LATEST

MAX_RANGE = timedelta(days=366)


class Period(BaseModel):
    """`from` and `to` (timezone-aware); `to` defaults to now, `from` to a day before `to`."""

    model_config = ConfigDict(populate_by_name=True)

    start: AwareDatetime | None = Field(default=None, alias="from")
    end: AwareDatetime | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _bounds(self) -> Period:
        if any(given is not None and not EARLIEST <= given <= LATEST for given in (self.start, self.end)):
            raise ValueError(f"'from' and 'to' must lie between {EARLIEST.year} and {LATEST.year}")
        end = self.end or datetime.now(UTC)
        start = self.start or end - timedelta(days=1)
        if start >= end:
            raise ValueError("'from' must be before 'to'")
        if end - start > MAX_RANGE:
            raise ValueError("at most 366 days at once: narrow 'from' and 'to'")
        self.start, self.end = start.astimezone(UTC), end.astimezone(UTC)
        return self

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end): both set by validation, so a route need not check them again."""
        assert self.start is not None and self.end is not None  # _bounds sets both
        return self.start, self.end


class TimeRange(Period):
    format: Literal["json", "csv"] = "json"


class HistoryEvent(BaseModel):
    event_id: str
    measured_at: datetime
    applied_at: datetime
    key_id: str
    key_label: str | None
    seh: dict[str, Any] | None = Field(description="The SEH status this report set, if it set one.")
    units: list[dict[str, Any]] = Field(description="The units this report set.")
    state: dict[str, Any] = Field(description="The facility's whole state after this report.")


class FacilityHistory(BaseModel):
    facility_id: str
    region_id: str
    start: datetime
    end: datetime
    initial_state: dict[str, Any] | None = Field(description="The state at `start` (after the last earlier report).")
    events: list[HistoryEvent]
    truncated: bool


class StopPeriod(BaseModel):
    facility_id: str
    start: datetime
    end: datetime | None = Field(description="None while the stop is still going.")
    minutes: float
    reason: str | None
    ongoing: bool
    started_before_range: bool = Field(description="The stop began before `from`; counted from `from`.")


class DayTotal(BaseModel):
    facility_id: str
    date: dt.date = Field(description="Local date (Europe/Amsterdam).")
    stops: int
    minutes: float


class FacilityStopTotal(BaseModel):
    facility_id: str
    name: str
    stops: int
    minutes: float
    minutes_per_day: float


class RegionStops(BaseModel):
    region_id: str
    start: datetime
    end: datetime
    timezone: str
    stops: list[StopPeriod]
    per_day: list[DayTotal]
    per_facility: list[FacilityStopTotal]


class AuditItem(BaseModel):
    at: datetime
    key_id: str | None
    actor: str = Field(description="The key's label (never its secret), or the operator's tool.")
    action: str
    target: str | None
    event_id: str | None = None
    detail: dict[str, Any] = {}


class PressurePoint(BaseModel):
    measured_at: datetime
    nedocs: int | None
    triage_min: int | None
    doctor_min: int | None


class PressureTrend(BaseModel):
    """Waiting times and NEDOCS as reported over the last hours: the short trend beside the figure."""

    facility_id: str
    start: datetime
    end: datetime
    points: list[PressurePoint]
