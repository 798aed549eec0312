"""Ambulance travel time: one seam, two models.

`GeodesicTravel` (the default) needs nothing but coordinates. Every figure it uses is
here, so it can be read, argued with and changed in one place:

- **Distance**: the geodesic (WGS84 ellipsoid, geopy) times a detour factor of 1.3 for the
  road network. Road distance is typically 1.2–1.4 times the straight line (e.g. Boscoe,
  Henry & Zdeb, *A nationwide comparison of driving distance versus straight-line distance
  to hospitals*, Professional Geographer 64(2), 2012, found about 1.4 in the United States;
  the Dutch network is denser, hence 1.3).
- **Speed** with lights and siren, in bands along the route: the first 3 km at 40 km/h
  (leaving a town), the next 12 km at 70 km/h (provincial roads), the rest at 100 km/h
  (motorways: ambulances may drive 40 km/h over the limit, which is 100 km/h by day since
  2020, but traffic and junctions bring the average down). These are our assumptions, in
  the spirit of the RIVM travel-time model (Kommer & Zwakhals, *Modellen referentiekader
  ambulancezorg 2008: documentatie rijtijden- en capaciteitsmodel*, RIVM 2011), which uses
  measured ambulance speeds per road type on a real road network.
- **Fixed time**: one minute (leaving the scene, arriving at the ambulance bay).

What it cannot know: water (Texel and the other Wadden islands need a ferry or a
helicopter: the model's minutes for them are a floor, not an estimate), closed roads,
traffic. A deployment with a routing service sets `ROUTER_URL` to an OSRM-compatible
server (`/table/v1/driving`), and `OsrmTravel` asks it; if it does not answer, the
lookup falls back to the geodesic model and says so, because dispatch always gets an
answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx
from geopy.distance import geodesic

Point = tuple[float, float]  # (lat, lon)

DETOUR_FACTOR = 1.3
SPEED_BANDS_KMH: tuple[tuple[float, float], ...] = ((3.0, 40.0), (12.0, 70.0), (float("inf"), 100.0))
FIXED_MIN = 1.0
NORM_MIN = 45.0


class RouterUnavailable(Exception):
    """The routing service did not give a usable answer."""


class TravelModel(Protocol):
    name: str
    road_aware: bool  # True: its times can reorder places against the straight line (ask it for every option)

    async def minutes(self, origin: Point, destinations: list[Point]) -> list[float]:
        """Estimated ambulance minutes from `origin` to each destination, in order."""
        ...


def straight_km(a: Point, b: Point) -> float:
    return geodesic(a, b).km


def banded_minutes(road_km: float) -> float:
    """Minutes to drive `road_km` through the speed bands, plus the fixed time."""
    minutes, left = FIXED_MIN, road_km
    for length, speed in SPEED_BANDS_KMH:
        part = min(left, length)
        minutes += part / speed * 60
        left -= part
        if left <= 0:
            break
    return minutes


@dataclass(frozen=True)
class GeodesicTravel:
    name: str = "geodesic"
    road_aware: bool = False

    async def minutes(self, origin: Point, destinations: list[Point]) -> list[float]:
        return [banded_minutes(straight_km(origin, d) * DETOUR_FACTOR) for d in destinations]


@dataclass
class OsrmTravel:
    """Durations from an OSRM-compatible `table` service (one request: one source, N destinations)."""

    base_url: str
    timeout_s: float = 2.0
    profile: str = "driving"
    name: str = "osrm"
    road_aware: bool = True
    client: httpx.AsyncClient | None = None

    async def minutes(self, origin: Point, destinations: list[Point]) -> list[float]:
        if not destinations:
            return []
        coordinates = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in [origin, *destinations])
        url = f"{self.base_url.rstrip('/')}/table/v1/{self.profile}/{coordinates}"
        params = {"sources": "0", "destinations": ";".join(str(i) for i in range(1, len(destinations) + 1)), "annotations": "duration"}
        try:
            if self.client is not None:
                response = await self.client.get(url, params=params, timeout=self.timeout_s)
            else:
                async with httpx.AsyncClient() as client:
                    response = await client.get(url, params=params, timeout=self.timeout_s)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RouterUnavailable(f"router at {self.base_url} unreachable: {exc.__class__.__name__}") from exc
        if response.status_code != 200 or body.get("code") != "Ok":
            raise RouterUnavailable(f"router answered {response.status_code} {body.get('code')!r}")
        try:
            row = body["durations"][0]
            if len(row) != len(destinations):
                raise ValueError("wrong number of durations")
            return [FIXED_MIN + float(seconds) / 60 if seconds is not None else float("inf") for seconds in row]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RouterUnavailable(f"router answer not understood: {exc}") from exc


FALLBACK = GeodesicTravel()


async def minutes_with_fallback(travel: TravelModel, origin: Point, destinations: list[Point]) -> tuple[list[float], str]:
    """The model's minutes and its name; the geodesic model's, saying why, when a router fails."""
    try:
        return await travel.minutes(origin, destinations), travel.name
    except RouterUnavailable as exc:
        return await FALLBACK.minutes(origin, destinations), f"{FALLBACK.name} (router unavailable: {exc})"
