"""What dispatch asks and what it gets back, and the tables it keeps: declared capabilities and announcements."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from capacity.board.models import NedocsView, SehView, UnitView, WaitingView
from capacity.db import Base, UtcDateTime
from capacity.domain import UnitType

Need = StrEnum("Need", {"seh": "seh", **{t.value: t.value for t in UnitType}})  # type: ignore[misc]
Need.__doc__ = "`seh` (an SEH that takes ambulances) or a unit type."

# The Netherlands with a margin (Cadzand to Rottumeroog, Vaals to Bad Nieuweschans).
NL_LAT = (50.60, 53.75)
NL_LON = (3.20, 7.30)


class Candidate(BaseModel):
    facility_id: str
    name: str
    city: str
    region_id: str
    kind: str
    synthetic: bool = Field(default=False, description="Demo data: a simulated place, not a real provider.")
    lat: float
    lon: float
    distance_km: float = Field(description="Straight-line distance (the geodesic on the WGS84 ellipsoid).")
    travel_min: float = Field(description="Estimated ambulance travel time (see travel_model).")
    within_norm: bool = Field(description="Travel time within the 45-minute norm.")
    suitable: bool = Field(description="Can take this patient now, by the figures.")
    tier: int = Field(
        ge=1,
        le=5,
        description="1 suitable, fresh; 2 suitable, stale; 3 status unknown where normally open; "
        "4 said it cannot (stop, closed, stop expired, full) or lacks a capability; 5 the rest. The first `why` names it.",
    )
    stale: bool = Field(description="The figures it is judged on are older than the facility's reporting interval.")
    why: list[str] = Field(
        description="Short reasons: first the tier ('tier 3: …'), then why not suitable, or what to know (stale, busy, beyond 45 min)."
    )
    seh: SehView | None
    unit: UnitView | None = Field(description="The needed unit's figures, when the need is a unit type.")
    free: int | None = Field(description="Free places of the needed unit (null = unknown, never 0).")
    nedocs: NedocsView | None = Field(default=None, description="The SEH's crowding score; breaks ties between near options.")
    waiting: WaitingView | None = None
    capabilities: list[str]


class NearestAnswer(BaseModel):
    lat: float
    lon: float
    need: str
    capabilities: list[str]
    region: str | None
    travel_model: str
    norm_min: float
    generated_at: datetime
    last_event_ids: dict[str, str | None] = Field(
        default_factory=dict, description="Per region asked, the last event the answer reflects (null: none yet)."
    )
    suitable_within_norm: bool = Field(description="At least one suitable candidate within the norm.")
    candidates: list[Candidate]


class DeclaredCapability(Base):
    __tablename__ = "facility_capabilities"

    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    capability: Mapped[str] = mapped_column(String(40), primary_key=True)
    declared_by: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AnnouncementRecord(Base):
    __tablename__ = "announcements"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    region_id: Mapped[str] = mapped_column(String(16))
    facility_id: Mapped[str] = mapped_column(String(64), index=True)
    need: Mapped[str] = mapped_column(String(20))
    eta: Mapped[datetime] = mapped_column(UtcDateTime())
    urgency: Mapped[str] = mapped_column(String(4))
    category: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(24))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    state: Mapped[str] = mapped_column(String(12), default="active")
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
