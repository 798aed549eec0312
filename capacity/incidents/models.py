"""What dispatch or a coordinator asks for a mass-casualty incident, the proposed plan it gets,
and the SQL record of both (who proposed it, the counts, every plan line).

No personal data: the request carries counts only, and any field not declared here is refused
(422), so a name or a date of birth typed into a form never reaches the record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from capacity.db import Base, UtcDateTime
from capacity.dispatch.models import NL_LAT, NL_LON
from regions.geo import Municipality, municipalities

MAX_COUNT = 500
"""Per triage class and per need. An assumption, not a source: far more than the hospitals of
several regions can take at once, so a larger figure is more likely a typing error, refused
rather than planned."""

TRIAGE = ("T1", "T2", "T3")
NEEDS = ("burns", "paediatric")
IncidentState = Literal["proposed"]
"""This step only proposes; confirmed, closed and cancelled come with the confirm step."""

Count = Field(default=0, ge=0, le=MAX_COUNT)


class Casualties(BaseModel):
    """Casualties per triage class: T1 immediate, T2 urgent, T3 delayed (capacity.incidents.rules)."""

    model_config = ConfigDict(extra="forbid")

    T1: int = Count
    T2: int = Count
    T3: int = Count

    @property
    def total(self) -> int:
        return self.T1 + self.T2 + self.T3


class Needs(BaseModel):
    """Special needs among the casualties, as counts (the class of each is not given)."""

    model_config = ConfigDict(extra="forbid")

    burns: int = Count
    paediatric: int = Count

    @property
    def total(self) -> int:
        return self.burns + self.paediatric


def municipality_named(name: str) -> Municipality | None:
    """A municipality by its CBS 2022 name (any case) or code (GM0344), as /api/v1/municipalities lists them."""
    wanted = name.strip().casefold()
    return next((m for m in municipalities() if wanted in (m.name.casefold(), m.id.casefold())), None)


class IncidentRequest(BaseModel):
    """A location (lat/lon, or a municipality's centroid) and the counts; nothing else."""

    model_config = ConfigDict(extra="forbid")

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    municipality: str | None = Field(
        default=None, min_length=1, max_length=80, description="A name from /api/v1/municipalities, instead of lat/lon."
    )
    casualties: Casualties
    needs: Needs = Field(default_factory=Needs)

    @model_validator(mode="after")
    def _sound(self) -> IncidentRequest:
        pointed = self.lat is not None or self.lon is not None
        if pointed and self.municipality is not None:
            raise ValueError("give either lat and lon or a municipality, not both")
        if not pointed and self.municipality is None:
            raise ValueError("a location is needed: lat and lon, or a municipality")
        if pointed and (self.lat is None or self.lon is None):
            raise ValueError("lat and lon go together")
        if self.lat is not None and self.lon is not None:
            if not (NL_LAT[0] <= self.lat <= NL_LAT[1] and NL_LON[0] <= self.lon <= NL_LON[1]):
                raise ValueError(f"the point ({self.lat}, {self.lon}) lies outside the Netherlands")
        elif self.municipality is not None and municipality_named(self.municipality) is None:
            raise ValueError(f"unknown municipality {self.municipality[:80]!r}: use a name from /api/v1/municipalities")
        if self.casualties.total < 1:
            raise ValueError("at least one casualty is needed")
        if self.needs.total > self.casualties.total:
            raise ValueError(f"needs ({self.needs.total}) exceed the casualties ({self.casualties.total}): needs are counted among them")
        return self

    def point(self) -> tuple[float, float, str | None]:
        """(lat, lon, municipality name): a municipality stands for its centroid (CBS 2022)."""
        if self.lat is not None and self.lon is not None:
            return self.lat, self.lon, None
        found = municipality_named(self.municipality or "")
        if found is None:  # the validator refused it already
            raise ValueError("no location")
        return found.lat, found.lon, found.name


class Location(BaseModel):
    lat: float
    lon: float
    municipality: str | None = Field(description="The municipality asked for (its centroid is the point), or null.")


class PlanLineView(BaseModel):
    facility_id: str
    name: str
    region_id: str
    T1: int
    T2: int
    T3: int
    burns: int
    paediatric: int
    travel_min: float = Field(description="Estimated ambulance travel time from the incident (the app's travel model).")
    within_norm: bool = Field(description="Travel time within the 45-minute norm.")
    why: list[str] = Field(description="Why this hospital, and anything to know (beyond the norm, ordinary SEH for children).")


class Incident(BaseModel):
    id: str
    state: IncidentState
    created_at: datetime
    location: Location
    casualties: Casualties
    needs: Needs
    plan: list[PlanLineView] = Field(description="Per receiving hospital, nearest and most severe first as the planner ordered them.")
    unplaced: dict[str, int] = Field(description="Per triage class, the casualties no suitable hospital can take now.")
    unplaced_needs: dict[str, int] = Field(description="Per special need, the casualties no hospital with that capability could take.")
    rules: str = Field(description="The rule set the plan was made by (capacity.incidents.rules).")


class IncidentSummary(BaseModel):
    id: str
    state: IncidentState
    created_at: datetime
    location: Location
    casualties: Casualties
    needs: Needs
    total: int = Field(description="Casualties in all.")
    placed: int = Field(description="Casualties the plan places.")
    unplaced: int = Field(description="Casualties no suitable hospital can take now.")
    hospitals: int = Field(description="Receiving hospitals in the plan.")


class IncidentRecord(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(12))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    municipality: Mapped[str | None] = mapped_column(String(80))
    casualties: Mapped[dict[str, Any]] = mapped_column(JSON)
    needs: Mapped[dict[str, Any]] = mapped_column(JSON)
    unplaced: Mapped[dict[str, Any]] = mapped_column(JSON)
    unplaced_needs: Mapped[dict[str, Any]] = mapped_column(JSON)
    rules: Mapped[str] = mapped_column(String(40))


class IncidentLineRecord(Base):
    __tablename__ = "incident_lines"

    incident_id: Mapped[str] = mapped_column(String(40), ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    region_id: Mapped[str] = mapped_column(String(16))
    T1: Mapped[int] = mapped_column("t1", Integer)
    T2: Mapped[int] = mapped_column("t2", Integer)
    T3: Mapped[int] = mapped_column("t3", Integer)
    burns: Mapped[int] = mapped_column(Integer)
    paediatric: Mapped[int] = mapped_column(Integer)
    travel_min: Mapped[float] = mapped_column(Float)
    within_norm: Mapped[bool] = mapped_column(Boolean)
    why: Mapped[list[str]] = mapped_column(JSON)
