"""What the coverage API answers: the 45-minute norm per region and nationally, and what-if differences."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class NormModel(BaseModel):
    """The model's parameters (every source is in `regions/coverage.py` and `regions/COVERAGE.md`)."""

    norm_min: float = Field(description="The norm: minutes from the call until the patient is at an SEH.")
    response_min: float = Field(description="Fixed response budget: call until the ambulance is on scene.")
    on_scene_min: float = Field(description="Care on scene.")
    transport_budget_min: float = Field(description="What is left for the drive to the SEH.")
    travel_model: str
    population: str
    islands: str
    seh_rule: str


class Figures(BaseModel):
    people: int
    within: int = Field(description="People who can be at an SEH that takes ambulances within the norm.")
    outside: int
    share: float = Field(description="within / people")


class Area(BaseModel):
    pc4: str = Field(description="4-digit postcode area")
    region_id: str
    population: int
    minutes: float | None = Field(description="The model's minutes to the nearest counted SEH; null: no road (an island).")
    lat: float = Field(description="The area's point (PC4 centroid, WGS84), for maps.")
    lon: float


class RegionCoverage(Figures):
    region_id: str
    name: str
    outside_areas: list[Area] = Field(description="Unknown minutes first, then the longest, then the most people.")


class CoverageAnswer(BaseModel):
    generated_at: datetime
    model: NormModel
    counted_sehs: list[str] = Field(description="The SEHs that count (take ambulances) in these figures.")
    national: Figures
    regions: list[RegionCoverage] = Field(description="The regions this key may read.")
    last_event_ids: dict[str, str | None] = Field(
        default_factory=dict, description="Per region, the last event of the live state these figures reflect."
    )


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    closed: list[str] = Field(default_factory=list, max_length=200, description="SEH facility ids to treat as closed (stop).")
    opened: list[str] = Field(default_factory=list, max_length=200, description="SEH facility ids to treat as open.")


class RegionChange(BaseModel):
    region_id: str
    newly_outside: int = Field(description="People within now, outside in the scenario.")
    newly_within: int = Field(description="People outside now, within in the scenario.")
    newly_outside_areas: list[Area]
    newly_within_areas: list[Area]


class Difference(BaseModel):
    now: Figures = Field(description="National figures with the live state as it is.")
    newly_outside: int
    newly_within: int
    regions: list[RegionChange] = Field(description="Every readable region where anyone changes side.")


class WhatIfAnswer(CoverageAnswer):
    closed: list[str]
    opened: list[str]
    difference: Difference
