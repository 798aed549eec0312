"""The facility registry: ROAZ regions and facilities loaded from replaceable files.

The shipped files are copies of the project's reference data (see `data/README.md`);
a deployment points the settings at its own files with the same columns.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import IO

from capacity.domain import Capability
from regions.hours import HoursInvalid, SehHours, parse_hours

DATA = resources.files("regions").joinpath("data")
SEH_KINDS = frozenset({"seh", "seh_limited", "seh_unconfirmed", "hospital"})
"""Hospitals with an SEH: `seh` 24/7, `seh_limited` limited hours, `seh_unconfirmed` and `hospital`
(imported without saying) may have one; their reported SEH status tells."""
DEFAULT_OPEN_KINDS = frozenset({"seh"})
"""The 24/7 SEHs: open unless they say otherwise (or their declared hours do)."""
HOSPITAL_KINDS = SEH_KINDS | {"hospital_no_seh"}
CARE_KINDS = frozenset({"gp_post", "care_home", "rehab_centre", "mental_health", "basic_care_centre"})
FACILITY_KINDS = HOSPITAL_KINDS | CARE_KINDS


@dataclass(frozen=True, slots=True)
class Region:
    id: str
    name: str
    lead_trauma_centre: str


@dataclass(frozen=True, slots=True)
class Facility:
    id: str
    name: str
    city: str
    kind: str
    lat: float
    lon: float
    region_id: str
    reporting_interval_s: int
    units: tuple[str, ...] = ()
    synthetic: bool = False
    source: str = ""
    phone: str = ""
    hours: SehHours | None = None
    """The SEH's declared opening hours (None: open around the clock, or no SEH)."""

    def stale_at_ms(self, measured_ms: int) -> int:
        """When figures measured at `measured_ms` (epoch ms) go stale: after the reporting interval."""
        return measured_ms + self.reporting_interval_s * 1000

    @property
    def has_seh(self) -> bool:
        return self.kind in SEH_KINDS

    def open_by_hours(self, at: datetime) -> bool:
        """Whether the SEH's declared hours have it open at `at` (no hours: always)."""
        return self.hours is None or self.hours.open_at(at)

    def normally_open(self, at: datetime) -> bool:
        """An SEH that is open at `at` by design, whatever it reported: a 24/7 SEH (kind `seh`)
        within its declared hours, if it has any. Coverage counts it, and dispatch ranks it above
        declared stops, while it has never reported."""
        return self.kind in DEFAULT_OPEN_KINDS and self.open_by_hours(at)

    def may_offer(self, need: str) -> bool:
        """Whether asking this facility for `need` makes sense at all: an SEH is asked of hospitals
        (one without an SEH is shown as such), a unit type of facilities that offer it or did not say."""
        if need == "seh":
            return self.kind in HOSPITAL_KINDS
        return not self.units or need in self.units


@dataclass(eq=False)
class Registry:
    """Regions and facilities. Changed only by `merge` (imported facilities), which bumps
    `revision`, so what is built from it (dispatch's arrays of places) knows when to rebuild."""

    regions: dict[str, Region]
    facilities: dict[str, Facility]
    by_region: dict[str, tuple[Facility, ...]] = field(default_factory=dict)
    capabilities: dict[str, frozenset[str]] = field(default_factory=dict)
    revision: int = 0
    shipped: dict[str, Facility] = field(default_factory=dict)
    """The reference data as loaded, before imports and declarations (what a removed declaration
    falls back to)."""

    @classmethod
    def build(cls, regions: list[Region], facilities: list[Facility], capabilities: dict[str, frozenset[str]] | None = None) -> Registry:
        region_map = {r.id: r for r in regions}
        by_region: dict[str, list[Facility]] = {r.id: [] for r in regions}
        seen: set[str] = set()
        for f in facilities:
            if f.id in seen:
                raise ValueError(f"facility {f.id} appears twice")
            if f.region_id not in region_map:
                raise ValueError(f"facility {f.id} names unknown region {f.region_id}")
            if f.kind not in FACILITY_KINDS:
                raise ValueError(f"facility {f.id} has unknown kind {f.kind!r}")
            seen.add(f.id)
            by_region[f.region_id].append(f)
        for facility_id in capabilities or {}:
            if facility_id not in seen:
                raise ValueError(f"capabilities name unknown facility {facility_id}")
        return cls(
            regions=region_map,
            facilities={f.id: f for f in facilities},
            by_region={r: tuple(sorted(fs, key=lambda f: f.name)) for r, fs in by_region.items()},
            capabilities=dict(capabilities or {}),
            shipped={f.id: f for f in facilities},
        )

    def merge(self, facilities: list[Facility]) -> None:
        """Add or update imported facilities in place, so every part holding this registry sees them.

        Only a worker's own refresh calls this (imports are validated before they are stored)."""
        changed: set[str] = set()
        for f in facilities:
            old = self.facilities.get(f.id)
            if old == f:
                continue
            if old is not None:
                changed.add(old.region_id)
            self.facilities[f.id] = f
            changed.add(f.region_id)
        for region_id in changed:
            members = [f for f in self.facilities.values() if f.region_id == region_id]
            self.by_region[region_id] = tuple(sorted(members, key=lambda f: f.name))
        if changed:
            self.revision += 1


def open_csv(path: Path | None, default: str) -> IO[str]:
    """A CSV file for `csv` to read (newline=""): the deployment's own at `path`, else the shipped
    `default`. The shipped file is opened as bytes and wrapped, as `Path.open` does, because a
    package resource's `open` is not typed to take `newline`."""
    if path:
        return open(path, newline="", encoding="utf-8")
    return io.TextIOWrapper(DATA.joinpath(default).open("rb"), encoding="utf-8", newline="")


def load_registry(
    *,
    facilities_file: Path | None = None,
    regions_file: Path | None = None,
    capabilities_file: Path | None = None,
    default_interval_s: int = 900,
) -> Registry:
    """Read regions and facilities; a facility row may carry its own `reporting_interval_s`, the
    `units` it offers (`elv;grz`), `synthetic` (true for demo data) and its SEH's
    `opening_hours` (regions.hours; empty: around the clock)."""
    with open_csv(regions_file, "roaz_regions.csv") as fh:
        regions = [
            Region(id=r["region_id"], name=r["name"], lead_trauma_centre=r.get("lead_trauma_centre", "")) for r in csv.DictReader(fh)
        ]
    with open_csv(facilities_file, "nl_emergency_facilities.csv") as fh:
        facilities = [
            Facility(
                id=row["id"],
                name=row["name"],
                city=row["city"],
                kind=row["kind"],
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                region_id=row["roaz_region"],
                reporting_interval_s=int(row.get("reporting_interval_s") or default_interval_s),
                units=tuple(u for u in (row.get("units") or "").replace(",", ";").split(";") if u.strip()),
                synthetic=(row.get("synthetic") or "").strip().lower() in ("true", "1", "yes"),
                source=row.get("source") or "",
                phone=row.get("phone") or "",
                hours=_hours_of(row),
            )
            for row in csv.DictReader(fh)
        ]
    known = {c.value for c in Capability}
    capabilities: dict[str, set[str]] = {}
    with open_csv(capabilities_file, "capabilities.csv") as fh:
        for row in csv.DictReader(fh):
            if row["capability"] not in known:
                raise ValueError(f"unknown capability {row['capability']!r} for {row['facility_id']}")
            capabilities.setdefault(row["facility_id"], set()).add(row["capability"])
    return Registry.build(regions, facilities, {f: frozenset(c) for f, c in capabilities.items()})


def _hours_of(row: dict[str, str]) -> SehHours | None:
    try:
        return parse_hours(row.get("opening_hours"))
    except HoursInvalid as exc:
        raise ValueError(f"facility {row['id']}: opening_hours: {exc}") from exc


def outlines_geojson(path: Path | None = None) -> bytes:
    """The ROAZ outlines as GeoJSON bytes, for maps that must work offline."""
    return path.read_bytes() if path else DATA.joinpath("roaz_regions.geojson").read_bytes()
