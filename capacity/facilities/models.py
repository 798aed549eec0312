"""An imported facility: as stored, as one CSV row is checked, and as the API answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from capacity.db import Base, UtcDateTime
from capacity.domain import UnitType
from regions.hours import SehHours, parse_hours
from regions.registry import SEH_KINDS

Kind = Literal[
    "basic_care_centre",
    "care_home",
    "gp_post",
    "hospital",
    "hospital_no_seh",
    "mental_health",
    "rehab_centre",
    "seh",
    "seh_limited",
    "seh_unconfirmed",
]
"""FACILITY_KINDS spelled out, sorted, so a type checker can read it (a test keeps the two equal)."""

COLUMNS = (
    "id",
    "name",
    "city",
    "kind",
    "lat",
    "lon",
    "region",
    "units",
    "reporting_interval_s",
    "synthetic",
    "source",
    "phone",
    "opening_hours",
)
REQUIRED_COLUMNS = ("id", "name", "kind", "lat", "lon")


class ImportedFacility(Base):
    __tablename__ = "facilities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    lat: Mapped[float] = mapped_column(Float())
    lon: Mapped[float] = mapped_column(Float())
    region_id: Mapped[str] = mapped_column(String(16), index=True)
    reporting_interval_s: Mapped[int | None] = mapped_column(Integer(), default=None)
    units: Mapped[str] = mapped_column(String(300), default="")
    synthetic: Mapped[bool] = mapped_column(Boolean(), default=False)
    source: Mapped[str] = mapped_column(String(500), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    opening_hours: Mapped[str] = mapped_column(String(500), default="", server_default="")
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeclaredHours(Base):
    """An SEH's opening hours as an admin declared them: they replace the facilities file's."""

    __tablename__ = "seh_opening_hours"

    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hours: Mapped[str] = mapped_column(String(500))
    declared_by: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(UtcDateTime())


class FacilityRow(BaseModel):
    """One row of a facilities file, checked on its own (coordinates and region are checked after)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, arbitrary_types_allowed=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$", description="lower-case letters, digits, . _ -")
    name: str = Field(min_length=1, max_length=200)
    city: str = Field(default="", max_length=100)
    kind: Kind
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    region: str | None = Field(default=None, description="ROAZ region; empty: derived from the coordinates")
    units: list[UnitType] = Field(default_factory=list, description="unit types offered, separated by ';' (or spaces)")
    reporting_interval_s: int | None = Field(default=None, ge=60, le=86_400)
    synthetic: bool = False
    source: str = Field(default="", max_length=500)
    phone: str = Field(default="", max_length=40, pattern=r"^(\+?[0-9][0-9 ()-]{5,38})?$", description="who to call about a place")
    opening_hours: SehHours | None = Field(
        default=None, description="the SEH's opening hours, OpenStreetMap syntax (regions.hours); empty: around the clock"
    )

    @field_validator("opening_hours", mode="before")
    @classmethod
    def _hours(cls, value: object, info: ValidationInfo) -> object:
        hours = parse_hours(value) if isinstance(value, str) else value  # HoursInvalid is a ValueError: the error names the column
        if hours is not None and info.data.get("kind") not in SEH_KINDS:
            raise ValueError(f"opening hours are for an SEH; kind {info.data.get('kind')!r} has none")
        return hours

    @field_validator("region", "reporting_interval_s", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("units", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in re.split(r"[;,|\s]+", value) if part]
        return value

    @field_validator("synthetic", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        return False if value == "" else value


class RowError(BaseModel):
    row: int = Field(description="1-based data row (the header is row 0)")
    column: str | None
    msg: str


class FacilityOut(BaseModel):
    id: str
    name: str
    city: str
    kind: str
    lat: float
    lon: float
    region_id: str
    units: list[str]
    reporting_interval_s: int
    synthetic: bool = Field(description="Demo data: a simulated place, not a real provider.")
    source: str
    phone: str
    opening_hours: str | None = Field(description="The SEH's opening hours (OpenStreetMap syntax); null: around the clock.")


class ImportResult(BaseModel):
    imported: int
    created: list[str]
    updated: list[str]
    regions: list[str]


HOURS_EXAMPLE = "Mo-Fr 08:00-23:00; Sa,Su 10:00-18:00; 2026 Dec 25 off"


class HoursRequest(BaseModel):
    """An SEH's opening hours: OpenStreetMap `opening_hours` syntax, Dutch local time (regions.hours)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"hours": HOURS_EXAMPLE}]})

    hours: str = Field(
        min_length=1,
        max_length=500,
        description="Weekdays and times in local time; later rules override earlier ones for the days they name, "
        f"which gives exceptions by date; e.g. {HOURS_EXAMPLE!r}. Around the clock: DELETE the declaration.",
    )

    @field_validator("hours")
    @classmethod
    def _readable(cls, value: str) -> str:
        parsed = parse_hours(value)
        if parsed is None:
            raise ValueError("empty: DELETE the declaration for an SEH open around the clock")
        return parsed.text

    def parsed(self) -> SehHours:
        return SehHours.parse(self.hours)


class HoursStretch(BaseModel):
    start: datetime
    end: datetime
    open: bool


class FacilityHours(BaseModel):
    facility_id: str
    hours: str | None = Field(description="The SEH's opening hours; null: open around the clock.")
    source: Literal["data", "declared"] | None = Field(
        description="`data`: the facilities file; `declared`: by an admin (it replaces the file's); null: none."
    )
    open_now: bool = Field(description="Whether the hours have the SEH open now (its own reports still take precedence).")
    next_change: datetime | None = Field(description="When the hours next open or close it (null: not within a year, or no hours).")
    week: list[HoursStretch] = Field(description="The next seven days, open and closed stretches in UTC.")
