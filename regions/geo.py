"""Where a point lies: inside the Netherlands, in which ROAZ region, near which municipality.

The ROAZ outlines are the shipped GeoJSON (CBS 2022 via TNO); municipality centroids are
CBS 2022 (see `data/README.md`). No geocoding service is needed.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape

from regions.registry import DATA, open_csv

MERGED_OUTLINES = {"ROAZ05": ("ROAZ02", "ROAZ05")}
"""The outline file draws ROAZ02 and ROAZ05 as one; inside it, the nearest municipality decides."""

NEAR_BORDER_KM = 2.0
"""The outlines are simplified (0.003°): a point this close outside still counts as inside."""


@dataclass(frozen=True, slots=True)
class Municipality:
    id: str
    name: str
    lat: float
    lon: float
    population: int
    region_id: str


@cache
def municipalities() -> tuple[Municipality, ...]:
    """The 345 municipalities of 2022 with their centroid, population and ROAZ region, by name."""
    with open_csv(None, "nl_municipality_regions.csv") as fh:
        region_of = {row["gm_code"]: row["roaz_code"] for row in csv.DictReader(fh)}
    with open_csv(None, "population_gemeente.csv") as fh:
        rows = [
            Municipality(
                id=row["id"],
                name=row["name_or_code"],
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                population=int(row["population"]),
                region_id=region_of[row["id"]],
            )
            for row in csv.DictReader(fh)
        ]
    return tuple(sorted(rows, key=lambda m: m.name))


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact enough to pick the nearest of nearby centroids."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6371.0 * math.hypot(x, math.radians(lat2 - lat1))


class RegionLocator:
    """Point → ROAZ region, from the outlines; `None` outside the Netherlands."""

    def __init__(self, outlines: bytes) -> None:
        features = json.loads(outlines)["features"]
        # shapely ships no types: its geometries are Any here.
        self._shapes: list[tuple[str, Any]] = [(f["properties"]["region_id"], shape(f["geometry"])) for f in features]
        for _, geometry in self._shapes:
            shapely.prepare(geometry)
        self._country = shapely.union_all([g for _, g in self._shapes])
        shapely.prepare(self._country)

    @classmethod
    def shipped(cls, path: Path | None = None) -> RegionLocator:
        return cls(path.read_bytes() if path else DATA.joinpath("roaz_regions.geojson").read_bytes())

    def region_of(self, *, lat: float, lon: float) -> str | None:
        point = shapely.Point(lon, lat)
        found = next((rid for rid, g in self._shapes if g.contains(point)), None)
        if found is None:
            near = [(g.distance(point), rid) for rid, g in self._shapes]
            degrees, found = min(near)
            if degrees * 111.0 > NEAR_BORDER_KM:
                return None
        if found in MERGED_OUTLINES:
            candidates = [m for m in municipalities() if m.region_id in MERGED_OUTLINES[found]]
            return min(candidates, key=lambda m: _km(lat, lon, m.lat, m.lon)).region_id
        return found

    def in_netherlands(self, *, lat: float, lon: float) -> bool:
        return self.region_of(lat=lat, lon=lon) is not None
