"""What the coverage API answers: the 45-minute norm per region and nationally, and what-if differences."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from capacity.domain import EARLIEST, LATEST


class Published(BaseModel):
    """RIVM's national figure, beside ours (never used to compute ours)."""

    year: int
    share: float
    outside: int
    sehs_24_7: int
    stations_24_7: int
    source: str


class NormModel(BaseModel):
    """The model's parameters (every source is in `regions/norm.py` and `regions/COVERAGE.md`)."""

    norm_min: float = Field(description="The norm: minutes from the call until the patient is at an SEH.")
    dispatch_min: float = Field(description="Call handling (meldtijd).")
    turnout_min: float = Field(description="Turnout (uitruktijd): alerted until the crew drives off.")
    response: str = Field(description="How the drive to the patient is found: from the nearest counted ambulance station.")
    on_scene_min: float = Field(description="Stabilising and loading on scene.")
    travel_model: str
    population: str
    islands: str
    seh_rule: str
    published: Published


class Station(BaseModel):
    id: str
    name: str
    city: str
    lat: float
    lon: float
    availability: str = Field(description="RIVM's Beschikbaarheid: `24 uur`, `24 uur DAM/VWS`, `Dag/avond`, `Nacht`, `Opkomst`.")
    counted: bool = Field(description="Counted for the norm now: staffed around the clock.")


class Figures(BaseModel):
    people: int
    within: int = Field(description="People who can be at an SEH that takes ambulances within the norm.")
    outside: int
    share: float = Field(description="within / people")


class Area(BaseModel):
    pc4: str = Field(description="4-digit postcode area")
    region_id: str
    population: int
    minutes: float | None = Field(
        description="The model's minutes from the call until at the nearest counted SEH; null: no road (an island)."
    )
    response_min: float | None = Field(
        description="Of these, from the call until the ambulance is on scene (from the nearest counted station)."
    )
    lat: float = Field(description="The area's point (PC4 centroid, WGS84), for maps.")
    lon: float


class RegionCoverage(Figures):
    region_id: str
    name: str
    outside_areas: list[Area] = Field(description="Unknown minutes first, then the longest, then the most people.")


class CoverageAnswer(BaseModel):
    generated_at: datetime
    model: NormModel
    at: datetime | None = Field(default=None, description="The moment the figures are for, when not now (a what-if's `at`).")
    counted_sehs: list[str] = Field(description="The SEHs that count (take ambulances) in these figures.")
    counted_stations: int = Field(description="How many ambulance stations the ambulances leave from.")
    national: Figures
    regions: list[RegionCoverage] = Field(description="The regions this key may read.")
    last_event_ids: dict[str, str | None] = Field(
        default_factory=dict, description="Per region, the last event of the live state these figures reflect."
    )


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    closed: list[str] = Field(default_factory=list, max_length=200, description="SEH facility ids to treat as closed (stop).")
    opened: list[str] = Field(default_factory=list, max_length=200, description="SEH facility ids to treat as open.")
    closed_stations: list[str] = Field(default_factory=list, max_length=300, description="Ambulance station ids to treat as closed.")
    opened_stations: list[str] = Field(
        default_factory=list, max_length=300, description="Ambulance station ids to treat as staffed (e.g. a day post at night)."
    )
    at: AwareDatetime | None = Field(
        default=None,
        description="A moment (e.g. 03:00 on a Sunday): start from the SEHs open then by their opening hours, "
        "not from the live state; the difference is against that moment without the changes.",
    )

    @field_validator("at")
    @classmethod
    def _countable(cls, value: datetime | None) -> datetime | None:
        if value is not None and not EARLIEST <= value < LATEST:
            raise ValueError(f"at must lie between the years {EARLIEST.year} and {LATEST.year}")
        return value


class RegionChange(BaseModel):
    region_id: str
    newly_outside: int = Field(description="People within now, outside in the scenario.")
    newly_within: int = Field(description="People outside now, within in the scenario.")
    newly_outside_areas: list[Area]
    newly_within_areas: list[Area]


class Difference(BaseModel):
    now: Figures = Field(description="National figures without the changes: the live state, or the moment `at` by the opening hours.")
    newly_outside: int
    newly_within: int
    regions: list[RegionChange] = Field(description="Every readable region where anyone changes side.")


class WhatIfAnswer(CoverageAnswer):
    closed: list[str]
    opened: list[str]
    closed_stations: list[str]
    opened_stations: list[str]
    difference: Difference
