"""The canonical report every feed (JSON, FHIR, EDXL-HAVE, CSV, form) turns into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from capacity.domain import UnitType

Count = int | None

MAX_COUNT = 100_000
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_AGE = timedelta(days=7)


class UnitReport(BaseModel):
    """Counts for one unit type. A unit sent replaces that unit whole: a count left out is unknown."""

    model_config = ConfigDict(extra="forbid")

    type: UnitType
    staffed: Count = Field(default=None, ge=0, le=MAX_COUNT)
    occupied: Count = Field(default=None, ge=0, le=MAX_COUNT)
    available: Count = Field(default=None, ge=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _within_staffed(self) -> UnitReport:
        if self.staffed is not None:
            for name in ("available", "occupied"):
                value = getattr(self, name)
                if value is not None and value > self.staffed:
                    raise ValueError(f"{name} ({value}) exceeds staffed ({self.staffed})")
            if self.available is not None and self.occupied is not None and self.available + self.occupied > self.staffed:
                raise ValueError(f"occupied ({self.occupied}) plus available ({self.available}) exceeds staffed ({self.staffed})")
        return self


class SehReport(BaseModel):
    """The SEH's status; a stop says why and until when it is expected to last."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "busy", "stop", "closed"]
    reason: str | None = Field(default=None, max_length=200)
    expected_until: AwareDatetime | None = None

    @field_validator("reason")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("reason must be plain text without control characters")
        value = value.strip() if value is not None else None
        return value or None


class Report(BaseModel):
    """What a facility sends: any subset of its SEH status and units, with the time it was measured."""

    model_config = ConfigDict(extra="forbid")

    measured_at: AwareDatetime
    seh: SehReport | None = None
    units: list[UnitReport] | None = Field(default=None, max_length=len(UnitType))

    @field_validator("measured_at")
    @classmethod
    def _not_in_future(cls, value: datetime) -> datetime:
        now = datetime.now(UTC)
        if value - now > FUTURE_TOLERANCE:
            raise ValueError("measured_at lies more than 5 minutes in the future; check the sender's clock")
        if now - value > MAX_AGE:
            raise ValueError("measured_at is more than 7 days old; live figures must be recent")
        return value

    @field_validator("units")
    @classmethod
    def _one_per_type(cls, units: list[UnitReport] | None) -> list[UnitReport] | None:
        if units:
            seen: set[UnitType] = set()
            for unit in units:
                if unit.type in seen:
                    raise ValueError(f"unit type {unit.type.value} appears more than once")
                seen.add(unit.type)
        return units

    @model_validator(mode="after")
    def _carries_something(self) -> Report:
        if self.seh is None and not self.units:
            raise ValueError("a report must carry seh, units or both")
        if self.seh and self.seh.expected_until and self.seh.expected_until <= self.measured_at:
            raise ValueError("seh.expected_until must lie after measured_at")
        return self


class AppliedUnit(BaseModel):
    type: UnitType
    staffed: Count
    occupied: Count
    available: Count
    measured_at: datetime


class AppliedSeh(BaseModel):
    status: str
    reason: str | None
    expected_until: datetime | None
    measured_at: datetime


class ReportResult(BaseModel):
    """The answer to a push: the event id to resume from and exactly what was applied."""

    event_id: str
    facility_id: str
    region_id: str
    measured_at: datetime
    duplicate: bool = Field(description="True when this exact report was applied before; nothing new was applied.")
    seh: AppliedSeh | None = None
    units: list[AppliedUnit] = []
