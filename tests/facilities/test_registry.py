"""The 11 ROAZ regions and 89 real hospital locations, and their GEO indexes in Redis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from regions.registry import Facility, Region, Registry, load_registry
from regions.travel import distance_km, straight_km
from tests.conftest import SHARED


def test_ships_the_eleven_regions_and_eighty_nine_hospital_locations():
    registry = load_registry()
    assert sorted(registry.regions) == [f"ROAZ{i:02d}" for i in range(1, 12)]
    assert len(registry.facilities) == 89
    mumc = registry.facilities["seh-tno-00"]
    assert (mumc.name, mumc.city, mumc.kind, mumc.region_id) == ("Academisch Ziekenhuis Maastricht", "Maastricht", "seh", "ROAZ11")
    assert 50.7 < mumc.lat < 53.6 and 3.3 < mumc.lon < 7.3
    assert sum(f.kind == "seh" for f in registry.facilities.values()) == 80


@pytest.mark.skipif(not (SHARED / "data").exists(), reason="shared reference data not beside the project")
def test_shipped_data_is_the_shared_reference_data_unchanged():
    for name in ("nl_emergency_facilities.csv", "roaz_regions.csv", "roaz_regions.geojson"):
        shipped = Path(load_registry.__code__.co_filename).parent / "data" / name
        assert shipped.read_bytes() == (SHARED / "data" / name).read_bytes(), name


def test_a_bad_replacement_file_is_refused_with_the_reason():
    region = Region(id="R1", name="r", lead_trauma_centre="")
    facility = Facility(id="f", name="f", city="c", kind="seh", lat=52.0, lon=5.0, region_id="R2", reporting_interval_s=900)
    with pytest.raises(ValueError, match="unknown region R2"):
        Registry.build([region], [facility])
    with pytest.raises(ValueError, match="appears twice"):
        Registry.build([region], [replace(facility, region_id="R1")] * 2)
    with pytest.raises(ValueError, match="unknown kind"):
        Registry.build([region], [replace(facility, region_id="R1", kind="castle")])


def test_the_distances_dispatch_ranks_by_are_geopys_geodesic_to_the_metre():
    """Every facility at once, vectorised (numpy), held to geopy's geodesic (Karney) for each."""
    registry = load_registry()
    facilities = list(registry.facilities.values())
    point = (50.85, 5.69)  # Maastricht
    km = distance_km(point[0], point[1], np.array([f.lat for f in facilities]), np.array([f.lon for f in facilities]))
    for facility, distance in zip(facilities, km.tolist(), strict=True):
        assert abs(distance - straight_km(point, (facility.lat, facility.lon))) < 0.001, facility.id
    assert facilities[int(np.argmin(km))].id == "seh-tno-00"
