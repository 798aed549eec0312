"""The canonical report every feed (JSON, FHIR, EDXL-HAVE, CSV, form) turns into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, field_validator, model_validator
from pydantic_core import CoreSchema, core_schema

from capacity.domain import LATEST, REPORTABLE_SEH_STATUSES, Capability, SehStatus, StopReason, UnitType

Count = int | None

MAX_COUNT = 100_000
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_AGE = timedelta(days=7)
MAX_WAIT_MIN = 24 * 60


class _Reportable:
    """Admits only the statuses a facility may send, as a `SehStatus`: the schema lists their values
    and a wrong one gets the same `literal_error` a `Literal` of them would give."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            SehStatus, core_schema.literal_schema([s.value for s in REPORTABLE_SEH_STATUSES])
        )


ReportableSehStatus = Annotated[SehStatus, _Reportable()]
"""An SEH status a report may carry (`stop_expired` is the service's own)."""


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


def _plain_text(value: str | None) -> str | None:
    if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be plain text without control characters")
    value = value.strip() if value is not None else None
    return value or None


ReasonText = Annotated[str | None, Field(default=None, max_length=200), AfterValidator(_plain_text)]


class _Stop(BaseModel):
    """Why and until when: every stop has a reason from the fixed list and an expected end."""

    reason: StopReason | None = None
    reason_text: ReasonText = Field(default=None, description="A few words; required with reason `other`.")
    expected_until: AwareDatetime | None = None

    @field_validator("expected_until")
    @classmethod
    def _writable(cls, value: datetime | None) -> datetime | None:
        if value is not None and value >= LATEST:
            raise ValueError(f"expected_until lies beyond the year {LATEST.year}: give when the stop is expected to end")
        return value

    def _check_stop(self, what: str) -> None:
        if self.reason is None:
            raise ValueError(f"{what} needs a reason: one of {', '.join(r.value for r in StopReason)}")
        if self.expected_until is None:
            raise ValueError(f"{what} needs an expected_until: when it is expected to end")
        if self.reason is StopReason.other and not self.reason_text:
            raise ValueError("reason `other` needs a reason_text saying what it is")


class SehReport(_Stop):
    """The SEH's status; a stop or closure says why (from a fixed list) and until when."""

    model_config = ConfigDict(extra="forbid")

    status: ReportableSehStatus

    @model_validator(mode="after")
    def _why_and_until_when(self) -> SehReport:
        if self.status in (SehStatus.stop, SehStatus.closed):
            self._check_stop(f"an SEH {self.status}")
        elif self.reason is not None or self.reason_text is not None or self.expected_until is not None:
            raise ValueError(f"reason and expected_until belong to a stop or closure, not to status {self.status}")
        return self


class CapabilityStop(_Stop):
    """A stop for one capability (e.g. no PCI) while the SEH itself stays open."""

    model_config = ConfigDict(extra="forbid")

    capability: Capability

    @model_validator(mode="after")
    def _why_and_until_when(self) -> CapabilityStop:
        self._check_stop(f"a {self.capability.value} stop")
        return self


class Waiting(BaseModel):
    """Current waiting times in minutes (each optional): to triage and to a doctor."""

    model_config = ConfigDict(extra="forbid")

    triage_min: int | None = Field(default=None, ge=0, le=MAX_WAIT_MIN)
    doctor_min: int | None = Field(default=None, ge=0, le=MAX_WAIT_MIN)

    @model_validator(mode="after")
    def _something(self) -> Waiting:
        if self.triage_min is None and self.doctor_min is None:
            raise ValueError("waiting needs triage_min, doctor_min or both")
        return self


class Report(BaseModel):
    """What a facility sends: any subset of its SEH status and units, with the time it was measured."""

    model_config = ConfigDict(extra="forbid")

    measured_at: AwareDatetime
    seh: SehReport | None = None
    units: list[UnitReport] | None = Field(default=None, max_length=len(UnitType))
    capability_stops: list[CapabilityStop] | None = Field(
        default=None, max_length=len(Capability), description="The capabilities on stop now (replaces the list; [] = none)."
    )
    waiting: Waiting | None = None
    nedocs: int | None = Field(default=None, ge=0, le=200, description="NEDOCS crowding score, 0–200 (SEH).")

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

    @field_validator("capability_stops")
    @classmethod
    def _one_per_capability(cls, stops: list[CapabilityStop] | None) -> list[CapabilityStop] | None:
        if stops and len({s.capability for s in stops}) != len(stops):
            raise ValueError("a capability appears more than once")
        return stops

    @model_validator(mode="after")
    def _carries_something(self) -> Report:
        if self.seh is None and not self.units and self.capability_stops is None and self.waiting is None and self.nedocs is None:
            raise ValueError("a report must carry seh, units, capability_stops, waiting or nedocs")
        for stop in self.capability_stops or []:
            if stop.expected_until and stop.expected_until <= self.measured_at:
                raise ValueError(f"the {stop.capability.value} stop's expected_until must lie after measured_at")
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
    reason_text: str | None = None
    expected_until: datetime | None
    measured_at: datetime


class AppliedStop(BaseModel):
    capability: str
    reason: str | None
    reason_text: str | None
    expected_until: datetime | None
    measured_at: datetime


class AppliedWaiting(BaseModel):
    triage_min: int | None
    doctor_min: int | None
    measured_at: datetime


class AppliedNedocs(BaseModel):
    score: int
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
    capability_stops: list[AppliedStop] | None = Field(default=None, description="Present when the report set them.")
    waiting: AppliedWaiting | None = None
    nedocs: AppliedNedocs | None = None
