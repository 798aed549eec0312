"""Ambulance travel time: one seam, two models.

`GeodesicTravel` (the default) needs nothing but coordinates. Every figure it uses is
here, so it can be read, argued with and changed in one place:

- **Distance**: the geodesic on the WGS84 ellipsoid times a detour factor of 1.3 for the
  road network. It is computed for many places at once with numpy (`distance_km`, Lambert's
  formula for long lines: within 0.4 m of geopy's geodesic for pairs inside the Netherlands,
  checked by the tests against geopy), since dispatch asks it for every facility. Road
  distance is typically 1.2–1.4 times the straight line (e.g. Boscoe, Henry & Zdeb, *A
  nationwide comparison of driving distance versus straight-line distance to hospitals*,
  Professional Geographer 64(2), 2012, found about 1.4 in the United States; the Dutch
  network is denser, hence 1.3).
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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import httpx
import numpy as np
from geopy.distance import geodesic

Point = tuple[float, float]  # (lat, lon)

DETOUR_FACTOR = 1.3
SPEED_BANDS_KMH: tuple[tuple[float, float], ...] = ((3.0, 40.0), (12.0, 70.0), (float("inf"), 100.0))
FIXED_MIN = 1.0


class RouterUnavailable(Exception):
    """The routing service did not give a usable answer."""


class TravelModel(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def road_aware(self) -> bool:
        """True: its times can reorder places against the straight line (ask it for every option)."""
        ...

    async def minutes(self, origin: Point, destinations: list[Point]) -> list[float]:
        """Estimated ambulance minutes from `origin` to each destination, in order."""
        ...


WGS84_A_KM = 6378.137
WGS84_F = 1 / 298.257223563


def straight_km(a: Point, b: Point) -> float:
    """The geodesic between two points, by geopy (Karney's algorithm): the reference the
    vectorised `distance_km` is held to."""
    return float(geodesic(a, b).km)


def distance_km(lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: np.ndarray | float, lon2: np.ndarray | float) -> np.ndarray:
    """Ellipsoidal (WGS84) distance by Lambert's formula for long lines, broadcasting like numpy.

    The central angle between the reduced latitudes (a haversine), corrected for the flattening;
    within a metre of the geodesic for pairs inside the Netherlands (regions/coverage.py has the
    comparison)."""
    beta1 = np.arctan((1 - WGS84_F) * np.tan(np.radians(lat1)))
    beta2 = np.arctan((1 - WGS84_F) * np.tan(np.radians(lat2)))
    dlon = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    h = np.sin((beta2 - beta1) / 2) ** 2 + np.cos(beta1) * np.cos(beta2) * np.sin(dlon / 2) ** 2
    sigma = 2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    p, q = (beta1 + beta2) / 2, (beta2 - beta1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (sigma - np.sin(sigma)) * np.sin(p) ** 2 * np.cos(q) ** 2 / np.cos(sigma / 2) ** 2
        y = (sigma + np.sin(sigma)) * np.cos(p) ** 2 * np.sin(q) ** 2 / np.sin(sigma / 2) ** 2
        km = WGS84_A_KM * (sigma - WGS84_F / 2 * (x + y))
    return np.where(sigma > 0, km, 0.0)


def banded_minutes_array(road_km: np.ndarray) -> np.ndarray:
    """`banded_minutes`, vectorised: the speed bands plus the fixed minute."""
    minutes = np.full(np.shape(road_km), FIXED_MIN, dtype=np.float64)
    start = 0.0
    for length, speed in SPEED_BANDS_KMH:
        minutes += np.clip(road_km - start, 0.0, length) / speed * 60.0
        start += length
    return minutes


def travel_minutes(lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: np.ndarray | float, lon2: np.ndarray | float) -> np.ndarray:
    """Ambulance minutes by the geodesic model, vectorised and broadcasting."""
    return banded_minutes_array(distance_km(lat1, lon1, lat2, lon2) * DETOUR_FACTOR)


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

    async def minutes(self, origin: Point, destinations: Sequence[Point]) -> list[float]:
        if not destinations:
            return []
        lats, lons = np.array([d[0] for d in destinations]), np.array([d[1] for d in destinations])
        # numpy types tolist() as Any: a float64 array's is a list of floats.
        return cast(list[float], travel_minutes(origin[0], origin[1], lats, lons).tolist())


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
