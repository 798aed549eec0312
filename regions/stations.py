"""Ambulance stations (standplaatsen): where the ambulance of the 45-minute norm leaves from.

The shipped list is RIVM's 2019 "klikfile ambulancestandplaatsen" with address-level points
(`data/ambulance_stations.csv`, see `data/README.md`); a deployment replaces it with
`CAPACITY_STATIONS_FILE` (same columns). Coverage counts the stations staffed around the clock
(`24 uur`, 224 rows), as RIVM's analysis does; the others (dynamic ambulance management posts,
day/evening and night posts) are kept for a sensitivity run.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from regions.registry import open_csv


class StationSet(StrEnum):
    """Which stations an ambulance may leave from."""

    always = "24/7"
    """Staffed around the clock (`24 uur`): RIVM's set for the norm."""
    round_the_clock_incl_dam = "24h-incl-dam"
    """Also the 24-hour posts for dynamic ambulance management (`24 uur DAM/VWS`)."""
    every = "all"
    """Every station, part-time posts included: an upper bound, for a sensitivity run."""


@dataclass(frozen=True, slots=True)
class Station:
    id: str
    name: str
    city: str
    lat: float
    lon: float
    availability: str
    """RIVM's `Beschikbaarheid`, verbatim: `24 uur`, `24 uur DAM/VWS`, `Dag/avond`, `Nacht`, `Opkomst`."""
    pc4: str
    safety_region: str

    @property
    def always_staffed(self) -> bool:
        return self.availability == "24 uur"

    def in_set(self, which: StationSet) -> bool:
        if which is StationSet.always:
            return self.always_staffed
        if which is StationSet.round_the_clock_incl_dam:
            return self.availability.startswith("24 uur")
        return True


def load_stations(path: Path | None = None) -> tuple[Station, ...]:
    """Every station of the file, in id order (the coverage matrix's columns)."""
    with open_csv(path, "ambulance_stations.csv") as fh:
        rows = list(csv.DictReader(fh))
    stations = [
        Station(
            id=row["id"],
            name=row["name"],
            city=row.get("city") or "",
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            availability=row["availability"].strip(),
            pc4=(row.get("pc4") or row.get("postcode", "")[:4]).strip(),
            safety_region=row.get("vr_code") or "",
        )
        for row in rows
    ]
    if len({s.id for s in stations}) != len(stations):
        raise ValueError("a station id appears twice in the stations file")
    return tuple(sorted(stations, key=lambda s: s.id))


def station_ids(stations: Iterable[Station], which: StationSet = StationSet.always) -> frozenset[str]:
    return frozenset(s.id for s in stations if s.in_set(which))
