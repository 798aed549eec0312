"""Demo care places (GP posts, care homes, rehab centres, mental-health clinics), clearly synthetic.

No open list of Dutch GP posts (huisartsenposten) or of care facilities with ELV/GRZ places
could be found (see `regions/data/README.md`), so the demo places a few of each kind at the
CBS 2022 centroids of each region's largest municipalities. Every row says `synthetic=true`;
every page and API answer labels them as demo data. They go through the same import
(validation included) as any admin's file.
"""

from __future__ import annotations

import csv
import io

from regions.geo import Municipality, municipalities

# (kind, units offered, name in Dutch, rank of the municipality by population within its region)
PLAN: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("gp_post", "", "Demo huisartsenpost", (0, 1, 2)),
    ("care_home", "elv;grz", "Demo verpleeghuis", (0, 1, 3)),
    ("rehab_centre", "grz", "Demo revalidatiecentrum", (0, 2)),
    ("mental_health", "psychiatry", "Demo GGZ-kliniek", (0, 3)),
    ("basic_care_centre", "elv", "Demo eerstelijnsverblijf", (1, 4)),
)
OFFSET_DEG = 0.004
"""Places in one town are spread a few hundred metres apart so their markers do not overlap."""


def _source(town: Municipality) -> str:
    return f"synthetic demo place at the CBS 2022 centroid of {town.name} ({town.id}); not a real provider"


def demo_places_csv() -> str:
    """The demo places as a facilities file (the format `capacity facilities import` reads)."""
    by_region: dict[str, list[Municipality]] = {}
    for town in municipalities():
        by_region.setdefault(town.region_id, []).append(town)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "city", "kind", "lat", "lon", "region", "units", "synthetic", "source"])
    for region_id in sorted(by_region):
        towns = sorted(by_region[region_id], key=lambda m: -m.population)
        for slot, (kind, units, label, ranks) in enumerate(PLAN):
            for rank in ranks:
                if rank >= len(towns):
                    continue
                town = towns[rank]
                writer.writerow(
                    [
                        f"demo-{kind.replace('_', '-')}-{town.id.lower()}",
                        f"{label} {town.name}",
                        town.name,
                        kind,
                        round(town.lat + OFFSET_DEG * (slot - 2), 6),
                        round(town.lon + OFFSET_DEG * (slot % 2), 6),
                        region_id,
                        units,
                        "true",
                        _source(town),
                    ]
                )
    return out.getvalue()
