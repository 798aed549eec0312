"""What readers see: every figure with when it was measured, its age, and whether it is stale."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from capacity.domain import UnitType


class SehView(BaseModel):
    status: str
    reason: str | None = Field(description="crowding, no_ic_bed, staffing, equipment, ict_failure, calamity or other")
    reason_text: str | None = None
    expected_until: datetime | None
    measured_at: datetime
    age_s: int
    stale: bool
    incoming: int = Field(default=0, description="Ambulance patients announced to this SEH (places held).")
    stop_since: datetime | None = Field(
        default=None, description="While on stop: when the stop began (the report that put it on stop; reports since only renew it)."
    )


class CapabilityStopView(BaseModel):
    """One capability on stop while the SEH may stay open; `expired` once its expected end passed
    without a new report (still honoured by dispatch: unconfirmed)."""

    capability: str
    reason: str | None
    reason_text: str | None
    expected_until: datetime | None
    expired: bool
    measured_at: datetime
    age_s: int


class WaitingView(BaseModel):
    triage_min: int | None
    doctor_min: int | None
    measured_at: datetime
    age_s: int
    stale: bool


class NedocsView(BaseModel):
    score: int
    band: str = Field(description="not_busy, busy, extremely_busy, overcrowded, severely_overcrowded, dangerously_overcrowded")
    measured_at: datetime
    age_s: int
    stale: bool


class UnitView(BaseModel):
    type: UnitType
    staffed: int | None = Field(description="null = unknown, never zero")
    occupied: int | None
    available: int | None
    measured_at: datetime
    age_s: int
    stale: bool
    held: int = Field(default=0, description="Places held by announced patients.")
    free: int | None = Field(default=None, description="available minus held (null = unknown, never zero)")


class Incoming(BaseModel):
    """An announced patient, as the receiving facility sees it (no personal data exists)."""

    id: str
    need: str
    eta: datetime
    urgency: str
    category: str | None
    expires_at: datetime


class FacilityState(BaseModel):
    id: str
    name: str
    city: str
    kind: str
    lat: float
    lon: float
    region_id: str
    reporting_interval_s: int
    synthetic: bool = Field(default=False, description="Demo data: a simulated place, not a real provider.")
    offers: list[str] = Field(default_factory=list, description="Unit types the facility offers (empty: not declared).")
    phone: str = Field(default="", description="Who to call (empty: not known).")
    seh: SehView | None = Field(description="null until the facility has reported its SEH status")
    units: list[UnitView]
    capability_stops: list[CapabilityStopView] = Field(default_factory=list)
    waiting: WaitingView | None = None
    nedocs: NedocsView | None = None
    last_measured_at: datetime | None
    last_event_id: str | None
    stale: bool = Field(description="True when any figure is stale or nothing was ever reported")
    incoming: list[Incoming] | None = Field(default=None, description="Only on the receiving facility's own board.")


class RegionSummary(BaseModel):
    id: str
    name: str
    lead_trauma_centre: str
    facilities: int


class RegionBoard(BaseModel):
    region: RegionSummary
    generated_at: datetime
    last_event_id: str | None = Field(description="Resume the websocket from here with ?since=")
    facilities: list[FacilityState]


class MunicipalityView(BaseModel):
    id: str = Field(description="CBS municipality code (2022), e.g. GM0363")
    name: str
    lat: float = Field(description="centroid, WGS84")
    lon: float
    region_id: str
