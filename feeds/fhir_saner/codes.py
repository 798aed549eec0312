"""FHIR R4 SANER: the code systems we read and write, and ONE table of the SANER bed codes
(`BED_CODES`) that both directions use. `feeds/FHIR-SANER.md` documents the mapping for people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from capacity.domain import UnitType
from feeds.documents import FHIR_JSON

ACCEPTED_MEDIA = frozenset({FHIR_JSON, "application/json"})

SANER_SYSTEM = re.compile(r"^https?://hl7\.org/fhir/(?:us|uv)/saner/CodeSystem/(?P<name>[A-Za-z]+)$", re.IGNORECASE)
"""SANER code systems, 2020 US-realm draft (`us`) and the current IG (`uv`), over http or https."""
GROUP_SYSTEMS = frozenset({"measuregroupsystem"})
POPULATION_SYSTEMS = frozenset({"measurepopulationsystem", "measuredvalues"})
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
"""The generic role (initial-population, measure-population) a SANER population also carries; not a bed code."""
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

OUT_MEASURE = "http://hl7.org/fhir/uv/saner/Measure/CDCPatientImpactAndHospitalCapacity"
OUT_GROUP_SYSTEM = "http://hl7.org/fhir/uv/saner/CodeSystem/MeasureGroupSystem"
OUT_POPULATION_SYSTEM = "http://hl7.org/fhir/uv/saner/CodeSystem/MeasuredValues"
UNIT_SYSTEM = "urn:roaz-capacity:fhir:unit"
"""Our own codes: the stratifier `unit-type`, its strata (our unit types) and their populations
(`staffed`, `occupied`, `available`), for the units SANER has no code for."""
UNIT_STRATIFIER = "unit-type"
EVENT_SYSTEM = "urn:roaz-capacity:fhir:event-id"
"""OperationOutcome.issue.details coding that carries the event id of an applied report."""

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
REFERENCE = re.compile(r"(?:^|/)(?P<type>Organization|Location)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
SUPPORTING = frozenset({"Organization", "Location"})
"""Resources a Bundle may carry besides MeasureReports: what a subject or reporter points at."""


class Figure(StrEnum):
    staffed = "staffed"
    occupied = "occupied"
    available = "available"


@dataclass(frozen=True, slots=True)
class BedCode:
    """One SANER population of the Beds group and what it means for us."""

    code: str
    unit: UnitType | None
    figure: Figure | None
    meaning: str
    minus: str | None = None
    """Derived: this count minus the count of `minus` (inpatient beds − ICU beds = non-ICU inpatient beds)."""


_ALL = "all beds, inpatient and outpatient: a hospital total, no unit of ours"
_AMB = "ambulatory (outpatient) beds: no unit of ours"
_INPATIENT = "inpatient beds including ICU beds: ward_general is this minus the ICU figure, unless numImpBeds* is sent"
BED_CODES: tuple[BedCode, ...] = (
    BedCode("numTotBeds", None, None, _ALL),
    BedCode("numTotBedsOcc", None, None, _ALL),
    BedCode("numTotBedsAvail", None, None, _ALL),
    BedCode("numICUBeds", UnitType.ic_adult, Figure.staffed, "staffed inpatient ICU beds"),
    BedCode("numICUBedsOcc", UnitType.ic_adult, Figure.occupied, "staffed ICU beds that are occupied"),
    BedCode("numICUBedsAvail", UnitType.ic_adult, Figure.available, "staffed ICU beds that are available"),
    BedCode("numImpBeds", UnitType.ward_general, Figure.staffed, "staffed inpatient non-ICU beds"),
    BedCode("numImpBedsOcc", UnitType.ward_general, Figure.occupied, "staffed inpatient non-ICU beds that are occupied"),
    BedCode("numImpBedsAvail", UnitType.ward_general, Figure.available, "staffed inpatient non-ICU beds that are available"),
    BedCode("numbeds", UnitType.ward_general, Figure.staffed, _INPATIENT, minus="numICUBeds"),
    BedCode("numBedsOcc", UnitType.ward_general, Figure.occupied, _INPATIENT, minus="numICUBedsOcc"),
    BedCode("numNICUBeds", UnitType.nicu, Figure.staffed, "neonatal ICU beds (2020 CDC reports; often under the group system)"),
    BedCode("numNICUBedsOcc", UnitType.nicu, Figure.occupied, "neonatal ICU beds that are occupied (2020 CDC reports)"),
    BedCode("numAmbBeds", None, None, _AMB),
    BedCode("numAmbBedsOcc", None, None, _AMB),
    BedCode("numAmbBedsAvail", None, None, _AMB),
)
BED_BY_CODE = {c.code.lower(): c for c in BED_CODES}
SANER_OUT: dict[UnitType, dict[Figure, BedCode]] = {}
"""Units sent out as SANER populations: those the table maps directly for all three figures."""
for _code in BED_CODES:
    if _code.unit is not None and _code.figure is not None and _code.minus is None:
        SANER_OUT.setdefault(_code.unit, {})[_code.figure] = _code
SANER_OUT = {unit: figures for unit, figures in SANER_OUT.items() if len(figures) == len(Figure)}

OTHER_GROUPS = {
    "ventilators": "ventilators are not a bed unit of ours",
    "encounters": "COVID-19 patient counts are not capacity",
    "coviddeaths": "COVID-19 deaths are not capacity",
    "acquiredcovid": "hospital-acquired COVID-19 is not capacity",
    "ventilatorsupplies": "supplies are not capacity",
    "n95masks": "supplies are not capacity",
    "otherrespirators": "supplies are not capacity",
    "surgicalmasks": "supplies are not capacity",
    "eyeprotection": "supplies are not capacity",
    "gown": "supplies are not capacity",
    "glove": "supplies are not capacity",
    "positiveincreasepercent": "laboratory test figures are not capacity",
    "positivepercent": "laboratory test figures are not capacity",
}
"""Groups of other SANER measures: read past, and listed as ignored in the answer."""
