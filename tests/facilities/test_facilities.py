"""Facilities beyond the hospital list: imported by an admin from CSV, all or nothing, placed in
their ROAZ region by their coordinates, known to every worker within seconds, and found by the
GP's free-places view and by dispatch. Demo places are labelled as demo data everywhere."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import httpx
import pytest

from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role
from capacity.facilities.models import Kind
from capacity.facilities.service import ImportRejected, check_rows, full_registry, read_csv
from feeds.demo_places import demo_places_csv
from regions.geo import RegionLocator, municipalities
from regions.registry import FACILITY_KINDS, load_registry
from tests.conftest import ServerThread, bearer, migrated, wait_for

ROOT = Path(__file__).resolve().parents[2]
HEADER = "id,name,city,kind,lat,lon,region,units,synthetic,source\n"
# Real coordinates (municipality centroids, CBS 2022); the places themselves are made up for the test.
MAASTRICHT_HOME = "t-home-maastricht,Test verpleeghuis Maastricht,Maastricht,care_home,50.8513,5.6910,,elv;grz,true,test\n"
HEERLEN_REHAB = "t-rehab-heerlen,Test revalidatie Heerlen,Heerlen,rehab_centre,50.8882,5.9795,,grz,true,test\n"
VENLO_GGZ = "t-ggz-venlo,Test GGZ Venlo,Venlo,mental_health,51.3704,6.1724,,psychiatry,false,test list 2026\n"
GOOD = HEADER + MAASTRICHT_HOME + HEERLEN_REHAB + VENLO_GGZ
NEAR_MAASTRICHT = (50.85, 5.69)


async def post_csv(http: httpx.AsyncClient, token: str, text: str) -> httpx.Response:
    return await http.post("/api/v1/facilities/import", content=text.encode(), headers={**bearer(token), "content-type": "text/csv"})


async def report(http: httpx.AsyncClient, token: str, facility_id: str, units: list[dict]) -> None:
    body = {"measured_at": datetime.now(UTC).isoformat(), "units": units}
    response = await http.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text


def unit(kind: str, staffed: int, available: int) -> dict:
    return {"type": kind, "staffed": staffed, "occupied": staffed - available, "available": available}


# -- checking a file ---------------------------------------------------------------------------


def check(text: str):
    header, rows = read_csv(text)
    return check_rows(
        header=header, rows=rows, registry=load_registry(), locator=RegionLocator.shipped(), imported_ids=set(), default_interval_s=900
    )


def test_the_kind_a_facilities_file_may_name_is_every_kind_the_registry_knows():
    assert list(get_args(Kind)) == sorted(FACILITY_KINDS)


def test_region_comes_from_the_coordinates_when_the_file_gives_none():
    placed = {f.id: f.region_id for f in check(GOOD)}
    assert placed == {"t-home-maastricht": "ROAZ11", "t-rehab-heerlen": "ROAZ11", "t-ggz-venlo": "ROAZ11"}


def test_points_in_the_merged_noord_holland_outline_go_to_the_region_of_the_nearest_municipality():
    locator = RegionLocator.shipped()
    amsterdam = next(m for m in municipalities() if m.name == "Amsterdam")
    texel = next(m for m in municipalities() if m.name == "Texel")
    assert (amsterdam.region_id, texel.region_id) == ("ROAZ05", "ROAZ02")
    assert locator.region_of(lat=amsterdam.lat, lon=amsterdam.lon) == "ROAZ05"
    assert locator.region_of(lat=texel.lat, lon=texel.lon) == "ROAZ02"


def test_every_bad_row_is_named_with_its_column_and_nothing_is_accepted():
    text = (
        HEADER
        + MAASTRICHT_HOME
        + "t-brussels,Test Brussel,Brussel,care_home,50.85,4.35,,elv,true,test\n"  # row 2: Belgium
        + "t-bad-unit,Test,Venlo,care_home,51.37,6.17,,elv;beds,true,test\n"  # row 3: unknown unit type
        + "t-bad-kind,Test,Venlo,pharmacy,51.37,6.17,,,true,test\n"  # row 4: unknown kind
        + "t-home-maastricht,Twice,Maastricht,care_home,50.85,5.69,,elv,true,test\n"  # row 5: id again
        + "seh-tno-00,Shipped,Maastricht,hospital,50.83,5.71,,,false,test\n"  # row 6: a shipped id
        + "t-bad-region,Test,Venlo,care_home,51.37,6.17,ROAZ99,elv,true,test\n"  # row 7: unknown region
        + "t-no-lat,Test,Venlo,care_home,,6.17,,elv,true,test\n"  # row 8: no latitude
    )
    with pytest.raises(ImportRejected) as rejected:
        check(text)
    found = {(e.row, e.column) for e in rejected.value.errors}
    assert found == {(2, "lat"), (3, "units"), (4, "kind"), (5, "id"), (6, "id"), (7, "region"), (8, "lat")}
    messages = {e.row: e.msg for e in rejected.value.errors}
    assert "outside the Netherlands" in messages[2] and "shipped reference data" in messages[6]


def test_a_file_with_unknown_or_missing_columns_is_refused_by_its_header():
    with pytest.raises(ImportRejected) as rejected:
        check("id,name,kind,lat,beds\nx1,X,care_home,51.0,\n")
    assert {(e.row, e.column) for e in rejected.value.errors} == {(0, "beds"), (0, "lon")}


def test_a_semicolon_separated_spreadsheet_export_reads_the_same():
    text = GOOD.replace(",", "\t").replace("elv;grz", "elv grz").replace("\t", ";")
    assert {f.id for f in check(text)} == {"t-home-maastricht", "t-rehab-heerlen", "t-ggz-venlo"}


def test_the_demo_places_are_all_synthetic_and_pass_the_same_checks():
    places = check(demo_places_csv())
    assert len(places) > 100 and all(f.synthetic for f in places)
    assert {f.kind for f in places} == {"gp_post", "care_home", "rehab_centre", "mental_health", "basic_care_centre"}
    assert set(load_registry().regions) == {f.region_id for f in places}


# -- the admin API, across workers -----------------------------------------------------------


async def test_an_admin_imports_places_that_then_show_on_the_board_labelled_and_get_their_own_keys(http, keys):
    admin = await keys.create(Role.admin)
    response = await post_csv(http, admin, GOOD)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "imported": 3,
        "created": ["t-home-maastricht", "t-rehab-heerlen", "t-ggz-venlo"],
        "updated": [],
        "regions": ["ROAZ11"],
    }
    viewer = await keys.create(Role.viewer)
    board = (await http.get("/api/v1/regions/ROAZ11/board", headers=bearer(viewer))).json()
    rows = {f["id"]: f for f in board["facilities"]}
    assert rows["t-home-maastricht"]["synthetic"] is True and rows["t-home-maastricht"]["offers"] == ["elv", "grz"]
    assert rows["t-ggz-venlo"]["synthetic"] is False and rows["seh-tno-00"]["synthetic"] is False
    listed = (await http.get("/api/v1/facilities", params={"synthetic": "true"}, headers=bearer(viewer))).json()
    assert [f["id"] for f in listed] == ["t-rehab-heerlen", "t-home-maastricht"]
    home = await keys.create(Role.facility, "t-home-maastricht")
    await report(http, home, "t-home-maastricht", [unit("elv", 12, 3)])


async def test_a_file_with_one_bad_row_imports_nothing_and_says_which_row(http, keys):
    admin = await keys.create(Role.admin)
    bad = GOOD + "t-sea,Test Noordzee,,care_home,52.6,3.9,,elv,true,test\n"
    response = await post_csv(http, admin, bad)
    assert response.status_code == 422
    assert response.json() == {"detail": [{"row": 4, "column": "lat", "msg": "the point (52.6, 3.9) lies outside the Netherlands"}]}
    viewer = await keys.create(Role.viewer)
    assert (await http.get("/api/v1/facilities", params={"kind": "care_home"}, headers=bearer(viewer))).json() == []


async def test_only_admin_keys_import_and_only_csv_is_read(http, keys):
    for role in (Role.viewer, Role.dispatch, Role.coordinator):
        assert (await post_csv(http, await keys.create(role), GOOD)).status_code == 403
    facility = await keys.create(Role.facility, "seh-tno-00")
    assert (await post_csv(http, facility, GOOD)).status_code == 403
    admin = await keys.create(Role.admin)
    as_json = await http.post("/api/v1/facilities/import", json={"rows": []}, headers=bearer(admin))
    assert as_json.status_code == 415
    not_utf8 = await http.post("/api/v1/facilities/import", content=b"\xff\xfe", headers={**bearer(admin), "content-type": "text/csv"})
    assert not_utf8.status_code == 422
    not_csv = await post_csv(http, admin, "id,name\rx")  # a lone carriage return: the csv module gives up (found by the fuzz)
    assert not_csv.status_code == 422 and "not CSV" in not_csv.json()["detail"][0]["msg"]


async def test_a_second_worker_knows_an_imported_facility_within_seconds(settings: Settings, keys):
    with ServerThread(settings) as first, ServerThread(settings) as second:
        async with httpx.AsyncClient(timeout=10) as client:
            admin = await keys.create(Role.admin)
            response = await client.post(
                f"{first.url}/api/v1/facilities/import", content=GOOD.encode(), headers={**bearer(admin), "content-type": "text/csv"}
            )
            assert response.status_code == 200, response.text
            viewer = await keys.create(Role.viewer)

            async def known_to_second() -> bool:
                answer = await client.get(f"{second.url}/api/v1/facilities/t-rehab-heerlen", headers=bearer(viewer))
                return answer.status_code == 200

            await wait_for(known_to_second, timeout=5)


async def test_a_restarted_worker_still_knows_the_imported_facilities(settings: Settings, keys):
    with ServerThread(settings) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
            assert (await post_csv(client, await keys.create(Role.admin), GOOD)).status_code == 200
    with ServerThread(settings) as restarted:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=10) as client:
            viewer = await keys.create(Role.viewer)
            assert (await client.get("/api/v1/facilities/t-ggz-venlo", headers=bearer(viewer))).status_code == 200


async def test_updating_an_imported_facility_keeps_its_id_and_cannot_move_it_to_another_region(http, keys):
    admin = await keys.create(Role.admin)
    assert (await post_csv(http, admin, GOOD)).status_code == 200
    renamed = HEADER + MAASTRICHT_HOME.replace("Test verpleeghuis Maastricht", "Zorgcentrum Maastricht")
    answer = await post_csv(http, admin, renamed)
    assert answer.json()["updated"] == ["t-home-maastricht"]
    moved = HEADER + MAASTRICHT_HOME.replace("50.8513,5.6910", "52.37,4.89")  # to Amsterdam
    refused = await post_csv(http, admin, moved)
    assert refused.status_code == 422 and refused.json()["detail"][0]["column"] == "region"
    viewer = await keys.create(Role.viewer)
    assert (await http.get("/api/v1/facilities/t-home-maastricht", headers=bearer(viewer))).json()["name"] == "Zorgcentrum Maastricht"


# -- what GPs and dispatch get -----------------------------------------------------------------


async def test_the_gp_view_lists_free_elv_places_nearest_first_with_their_age(http, keys):
    admin = await keys.create(Role.admin)
    assert (await post_csv(http, admin, GOOD)).status_code == 200
    await report(http, await keys.create(Role.facility, "t-home-maastricht"), "t-home-maastricht", [unit("elv", 12, 2), unit("grz", 20, 0)])
    await report(http, await keys.create(Role.facility, "t-rehab-heerlen"), "t-rehab-heerlen", [unit("grz", 30, 5)])
    viewer = await keys.create(Role.viewer)
    params = {"unit": ["elv", "grz"], "lat": NEAR_MAASTRICHT[0], "lon": NEAR_MAASTRICHT[1], "region": "ROAZ11"}
    answer = (await http.get("/api/v1/places", params=params, headers=bearer(viewer))).json()
    listed = [(p["facility_id"], p["unit"], p["free"]) for p in answer["places"]]
    assert listed == [("t-home-maastricht", "elv", 2), ("t-home-maastricht", "grz", 0), ("t-rehab-heerlen", "grz", 5)]
    first = answer["places"][0]
    assert first["synthetic"] is True and first["age_s"] < 60 and not first["stale"] and first["travel_min"] < 10
    only_free = await http.get("/api/v1/places", params={**params, "only_free": "true"}, headers=bearer(viewer))
    assert [(p["facility_id"], p["unit"]) for p in only_free.json()["places"]] == [("t-home-maastricht", "elv"), ("t-rehab-heerlen", "grz")]


async def test_a_place_that_offers_a_unit_but_never_reported_it_shows_as_unknown_not_zero(http, keys):
    assert (await post_csv(http, await keys.create(Role.admin), GOOD)).status_code == 200
    viewer = await keys.create(Role.viewer)
    answer = (await http.get("/api/v1/places", params={"unit": "psychiatry"}, headers=bearer(viewer))).json()
    assert [(p["facility_id"], p["free"], p["stale"]) for p in answer["places"]] == [("t-ggz-venlo", None, True)]


async def test_the_gp_view_refuses_half_a_point_and_a_point_abroad(http, keys):
    viewer = await keys.create(Role.viewer)
    half = await http.get("/api/v1/places", params={"lat": 51.0}, headers=bearer(viewer))
    abroad = await http.get("/api/v1/places", params={"lat": 48.85, "lon": 2.35}, headers=bearer(viewer))
    assert (half.status_code, abroad.status_code) == (422, 422)
    assert "outside the Netherlands" in abroad.json()["detail"][0]["msg"]


async def test_dispatch_finds_a_grz_place_but_never_offers_a_care_home_as_an_seh(http, keys):
    assert (await post_csv(http, await keys.create(Role.admin), GOOD)).status_code == 200
    await report(http, await keys.create(Role.facility, "t-rehab-heerlen"), "t-rehab-heerlen", [unit("grz", 30, 5)])
    dispatch = await keys.create(Role.dispatch)
    point = {"lat": 50.89, "lon": 5.98}
    grz = (await http.get("/api/v1/nearest", params={**point, "need": "grz"}, headers=bearer(dispatch))).json()
    assert grz["candidates"][0]["facility_id"] == "t-rehab-heerlen" and grz["candidates"][0]["synthetic"] is True
    seh = (await http.get("/api/v1/nearest", params={**point, "need": "seh", "limit": 50}, headers=bearer(dispatch))).json()
    assert not {c["facility_id"] for c in seh["candidates"]} & {"t-rehab-heerlen", "t-home-maastricht", "t-ggz-venlo"}


# -- the command line --------------------------------------------------------------------------


def run_cli(*args: str, settings: Settings) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "CAPACITY_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run([sys.executable, "-m", "capacity", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
async def test_the_import_command_stores_everything_or_lists_every_error_and_stores_nothing(settings: Settings, tmp_path: Path, rds):
    await (await migrated(settings)).dispose()
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD + "t-paris,Test Parijs,Parijs,care_home,48.85,2.35,,elv,true,test\n", encoding="utf-8")
    refused = await asyncio.to_thread(run_cli, "facilities", "import", str(bad), settings=settings)
    assert refused.returncode == 2 and "row 4, lat" in refused.stdout and "nothing imported" in refused.stdout
    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    done = await asyncio.to_thread(run_cli, "facilities", "import", str(good), settings=settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 3 facilities (3 new, 0 updated) in ROAZ11" in done.stdout
    assert await rds.get("cap:registry:version") == "1"  # running workers are told to reload
    db = Database(settings.sqlalchemy_url())
    try:
        registry = await full_registry(settings=settings, db=db)
    finally:
        await db.dispose()
    assert registry.facilities["t-ggz-venlo"].units == ("psychiatry",)


# -- identifiers other systems use -------------------------------------------------------------


async def test_an_admin_maps_another_systems_identifiers_to_a_facility_and_one_identifier_names_one_facility(http, keys):
    admin = await keys.create(Role.admin)
    body = {
        "identifiers": [
            {"scheme": "name", "value": "  Maastricht   UMC+ "},
            {"scheme": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "06010101"},
        ]
    }
    answer = await http.put("/api/v1/facilities/seh-tno-00/identifiers", json=body, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    assert answer.json()["identifiers"] == [
        {"scheme": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "06010101"},
        {"scheme": "name", "value": "maastricht umc+"},
    ]
    taken = await http.put(
        "/api/v1/facilities/seh-tno-39/identifiers", json={"identifiers": [body["identifiers"][1]]}, headers=bearer(admin)
    )
    assert taken.status_code == 409 and "seh-tno-00" in taken.json()["detail"]
    hospital = await keys.create(Role.facility, "seh-tno-00")
    assert (await http.put("/api/v1/facilities/seh-tno-00/identifiers", json=body, headers=bearer(hospital))).status_code == 403
    seen = await http.get("/api/v1/facilities/seh-tno-00/identifiers", headers=bearer(hospital))
    assert len(seen.json()["identifiers"]) == 2


async def test_an_identifier_that_is_only_separators_is_refused_and_the_others_keep_working(http, keys):
    """Found by fuzzing: a value of control separators (\x1f) passed the check but was stored empty,
    and every later reload of the identifiers answered 500."""
    admin = await keys.create(Role.admin)
    for value in ("\x1f", " \x1c\x1d ", "\u2028"):
        body = {"identifiers": [{"scheme": "0", "value": "\u00ff\u00ac"}, {"scheme": "name", "value": value}]}
        answer = await http.put("/api/v1/facilities/seh-tno-00/identifiers", json=body, headers=bearer(admin))
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"][:3] == ["body", "identifiers", "1"]
    fine = {"identifiers": [{"scheme": "name", "value": "Maastricht UMC+"}]}
    assert (await http.put("/api/v1/facilities/seh-tno-00/identifiers", json=fine, headers=bearer(admin))).status_code == 200


async def test_identifiers_resolve_names_without_case_and_our_own_ids(settings: Settings, keys):
    from capacity.interop.identifiers import Identifier, IdentifierBook, declare_identifiers

    db = await migrated(settings)
    try:
        await declare_identifiers(
            db=db, facility_id="seh-tno-00", identifiers=[Identifier(scheme="name", value="Hospital 1")], declared_by="t"
        )
        book = IdentifierBook(db=db, registry=load_registry())
        assert await book.resolve([("name", "HOSPITAL  1")]) == "seh-tno-00"
        assert await book.resolve([("xpil", "nope"), ("facility", "seh-tno-39")]) == "seh-tno-39"
        assert await book.resolve([("facility", "no-such-facility"), ("name", "Hospital 2")]) is None
    finally:
        await db.dispose()
