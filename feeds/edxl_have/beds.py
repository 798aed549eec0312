"""`HospitalBedCapacityStatus`: each BedCapacity onto a unit of ours through BED_TYPES."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from capacity.domain import UnitType
from feeds.edxl_have.codes import BED_TYPE_TO_UNIT, HAVE_NS
from feeds.edxl_have.reading import HospitalReading
from feeds.edxl_have.tree import Tree, split, text


def beds(*, tree: Tree, reading: HospitalReading, found: list[ET.Element]) -> None:
    """Each BedCapacity → a unit through BED_TYPES; two BedTypes onto one unit are added up."""
    if not found:
        return
    by_unit: dict[UnitType, dict[str, Any]] = {}
    sources: dict[UnitType, list[str]] = {}
    seen: dict[str, ET.Element] = {}
    for capacity in tree.children(found[0])["BedCapacity"]:
        parts = tree.children(capacity)
        if len(parts["BedType"]) != 1:
            found_types = len(parts["BedType"])
            tree.problem(capacity, f"BedCapacity needs exactly one BedType to say what its counts are for (found {found_types})")
            continue
        bed_type_element = parts["BedType"][0]
        bed_type = text(bed_type_element)
        if bed_type in seen:
            also = tree.lines.get(seen[bed_type])
            tree.problem(bed_type_element, f"BedType {bed_type} appears twice in this Hospital (also at line {also})")
            continue
        seen[bed_type] = bed_type_element
        reading.ignored += [tree.ignored(e, "sub-category bed types: no unit of ours", text(e)) for e in parts["SubCategoryBedType"]]
        reading.ignored += [tree.ignored(e, "no field of ours for comments") for e in parts["CommentText"]]
        counts = parts["Capacity"]
        if len(counts) > 1 and not parts["SubCategoryBedType"]:
            tree.problem(counts[1], "BedCapacity may hold one Capacity for its BedType (more only for sub-category bed types)")
            continue
        reading.ignored += [tree.ignored(e, "counts for a sub-category bed type: no unit of ours") for e in counts[1:]]
        unit = BED_TYPE_TO_UNIT.get(bed_type)
        if unit is None:
            said = ", ".join(f"{split(e.tag)[1]} {text(e)}" for c in counts[:1] for e in c if text(e))
            why = f"no unit type of ours for BedType {bed_type}" + (f" ({said} not applied)" if said else "")
            reading.ignored.append(tree.ignored(bed_type_element, why, bed_type))
            continue
        figures = _capacity(tree, reading, counts[0]) if counts else {"staffed": None, "available": None}
        if figures is None:
            continue
        if unit in by_unit:
            kept = by_unit[unit]
            for key in ("staffed", "available"):
                kept[key] = None if kept[key] is None or figures[key] is None else kept[key] + figures[key]
            sources[unit].append(bed_type)
            reading.notes.append(f"BedTypes {' and '.join(sources[unit])} are added up into our unit {unit.value}")
            continue
        by_unit[unit] = {"type": unit.value, **figures}
        sources[unit] = [bed_type]
        index = len(reading.units)
        reading.units.append(by_unit[unit])
        where = (tree.path(capacity), tree.lines.get(capacity))
        reading.locations[f"units.{index}"] = where
        if counts:
            for key, name in (("staffed", "BaselineCount"), ("available", "AvailableCount")):
                element = counts[0].find(f"{{{HAVE_NS}}}{name}")
                if element is not None:
                    reading.locations[f"units.{index}.{key}"] = (tree.path(element), tree.lines.get(element))


def _capacity(tree: Tree, reading: HospitalReading, capacity: ET.Element) -> dict[str, int | None] | None:
    """Capacity → staffed (BaselineCount) and available (AvailableCount; NotAvailable is 0)."""
    parts = tree.children(capacity)
    status_element = parts["CapacityStatus"][0] if parts["CapacityStatus"] else None
    available = tree.integer(parts["AvailableCount"][0]) if parts["AvailableCount"] else None
    staffed = tree.integer(parts["BaselineCount"][0]) if parts["BaselineCount"] else None
    for name in ("AdditionalCapacityCount24Hr", "AdditionalCapacityCount72Hr"):
        reading.ignored += [tree.ignored(e, "no field of ours for surge beds", text(e)) for e in parts[name]]
    if status_element is not None and text(status_element) == "NotAvailable":
        if available:
            tree.problem(status_element, f"CapacityStatus NotAvailable contradicts AvailableCount {available}")
            return None
        available = 0
    return {"staffed": staffed, "available": available}
