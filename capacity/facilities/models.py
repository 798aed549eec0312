"""An imported facility: as stored, as one CSV row is checked, and as the API answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from capacity.db import Base, UtcDateTime
from capacity.domain import UnitType
from regions.registry import FACILITY_KINDS

Kind = Literal[tuple(sorted(FACILITY_KINDS))]  # type: ignore[valid-type]

COLUMNS = ("id", "name", "city", "kind", "lat", "lon", "region", "units", "reporting_interval_s", "synthetic", "source", "phone")
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
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())


class FacilityRow(BaseModel):
    """One row of a facilities file, checked on its own (coordinates and region are checked after)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

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


class ImportResult(BaseModel):
    imported: int
    created: list[str]
    updated: list[str]
    regions: list[str]
