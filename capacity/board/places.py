"""Free places of a few unit types across regions, nearest first: the GP's and basic-care centre's
view ("where is an ELV or GRZ place today?") instead of phoning round."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, Field

from capacity.board.service import unit_view
from capacity.facilities.public import public_fields
from capacity.live.replica import Replica
from capacity.state import FacilityLive
from regions.registry import Facility, Registry
from regions.travel import TravelModel, distance_km, minutes_with_fallback

CARE_UNITS = ("elv", "grz", "psychiatry")


class Place(BaseModel):
    facility_id: str
    name: str
    city: str
    kind: str
    region_id: str
    synthetic: bool = Field(description="Demo data: a simulated place, not a real provider.")
    phone: str = Field(default="", description="Who to call to refer a patient (empty: not known).")
    lat: float
    lon: float
    unit: str
    free: int | None = Field(description="available minus held (null = unknown, never zero)")
    staffed: int | None
    measured_at: datetime | None = Field(description="null: the facility offers this unit but never reported it")
    age_s: int | None
    stale: bool
    distance_km: float | None = Field(default=None, description="Straight line from the chosen point.")
    travel_min: float | None = Field(default=None, description="Estimated travel time from the chosen point.")


class PlacesAnswer(BaseModel):
    units: list[str]
    regions: list[str]
    lat: float | None
    lon: float | None
    travel_model: str | None
    generated_at: datetime
    last_event_ids: dict[str, str | None] = Field(default_factory=dict, description="Per region, the last event the answer reflects.")
    places: list[Place]


async def free_places(
    *,
    replica: Replica,
    registry: Registry,
    travel: TravelModel,
    units: list[str],
    region_ids: list[str],
    point: tuple[float, float] | None = None,
    only_free: bool = False,
    now: datetime | None = None,
) -> PlacesAnswer:
    """One entry per facility and unit type: reported figures with their age, or `unknown` for a
    facility that offers the unit but never said. Nearest first when a point is given, else most
    free first; stale figures are listed, marked, after the fresh ones."""
    now = now or datetime.now(UTC)
    live = {r: replica.region(r) for r in region_ids}
    await replica.all_caught_up(region_ids)
    facilities = [f for r in region_ids for f in registry.by_region.get(r, ()) if any(u in f.units for u in units) or not f.units]
    places: list[Place] = []
    for f in facilities:
        places += _places_of(f, live[f.region_id].facility(f.id), units, now)
    if only_free:
        places = [p for p in places if p.free]
    model = None
    if point is not None and places:
        minutes, model = await minutes_with_fallback(travel, point, [(p.lat, p.lon) for p in places])
        km = distance_km(point[0], point[1], np.array([p.lat for p in places]), np.array([p.lon for p in places])).tolist()
        for place, value, distance in zip(places, minutes, km, strict=True):
            place.travel_min = round(value, 1)
            place.distance_km = round(distance, 1)
    if point is not None:
        places.sort(key=lambda p: (p.stale, p.travel_min, p.name, p.unit))
    else:
        places.sort(key=lambda p: (p.stale, -(p.free or 0), p.name, p.unit))
    return PlacesAnswer(
        units=units,
        regions=region_ids,
        lat=point[0] if point else None,
        lon=point[1] if point else None,
        travel_model=model,
        generated_at=now,
        last_event_ids={r: region.last_event_id for r, region in live.items()},
        places=places,
    )


def _places_of(facility: Facility, live: FacilityLive, units: list[str], now: datetime) -> list[Place]:
    found = []
    for unit in units:
        view = unit_view(facility, live, unit, now)
        if view is None and unit not in facility.units:
            continue
        found.append(
            Place(
                **public_fields(Place, facility, id="facility_id"),
                unit=unit,
                free=view.free if view else None,
                staffed=view.staffed if view else None,
                measured_at=view.measured_at if view else None,
                age_s=view.age_s if view else None,
                stale=view.stale if view else True,
            )
        )
    return found
