"""The 11 ROAZ regions and 89 real hospital locations, and their GEO indexes in Redis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from capacity.store import NATIONAL_GEO_KEY, region_geo_key
from regions.registry import Facility, Region, Registry, index_facilities, load_registry
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


async def test_facilities_are_in_a_geo_index_per_region_and_nationally(rds):
    registry = load_registry()
    await index_facilities(redis=rds, registry=registry)
    assert await rds.zcard(NATIONAL_GEO_KEY) == 89
    assert await rds.zcard(region_geo_key("ROAZ11")) == 6
    near_maastricht = await rds.geosearch(region_geo_key("ROAZ11"), longitude=5.69, latitude=50.85, radius=10, unit="km", sort="ASC")
    assert near_maastricht[0] == "seh-tno-00"
