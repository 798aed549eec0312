"""OASIS EDXL-HAVE 1.0 (Hospital AVailability Exchange) in and out.

In: a `HospitalStatus` document, bare or inside an EDXL-DE 1.0 `EDXLDistribution` (also inside
the UICDS `EdxlDeRequest` wrapper real senders use), is parsed with defusedxml only (no DTD, no
entities, no network), checked strictly against the parts of the HAVE 1.0 schema we read, and
turned into one canonical report per `Hospital` (`capacity.interop.service.Parsed`). What HAVE
says that we have no field for is answered back as ignored, never silently dropped.

Out: the live state of a region as a HAVE 1.0 `HospitalStatus` document that validates against
the OASIS schema and, posted back, gives the same figures.

Both directions use the one mapping table below (`SEH_TRAFFIC`, `BED_TYPES`, `STOP_REASONS`);
`feeds/EDXL-HAVE.md` shows the same table for people. A HAVE 2.0 adapter would add its element
names and namespace next to these and keep the rest.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import XMLParser
from fastapi import status
from pydantic import BaseModel, Field

from capacity.auth.models import Principal
from capacity.board.models import FacilityState, RegionBoard
from capacity.domain import UnitType, utc_iso
from capacity.history.log import EventLog
from capacity.interop.identifiers import NAME_SCHEME, OWN_SCHEME, IdentifierBook
from capacity.interop.service import DocumentRejected, Parsed, Problem, apply_resolved, may_send, resolve_reports
from capacity.reports.applier import Applier
from capacity.reports.models import FUTURE_TOLERANCE, MAX_AGE, MAX_COUNT, AppliedSeh, AppliedUnit, Report, ReportResult
from regions.registry import Facility, Registry

HAVE_NS = "urn:oasis:names:tc:emergency:EDXL:HAVE:1.0"
HAVE_2_NS = "urn:oasis:names:tc:emergency:edxl:have:2.0"
DE_NS = "urn:oasis:names:tc:emergency:EDXL:DE:1.0"
UICDS_NS = "http://uicds.org/HAVEService"
XNL_NS = "urn:oasis:names:tc:ciq:xnl:3"
XPIL_NS = "urn:oasis:names:tc:ciq:xpil:3"
GML_NS = "http://www.opengis.net/gml"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

# ---------------------------------------------------------------------------------------------
# The one mapping table (both directions; feeds/EDXL-HAVE.md shows the same)
# ---------------------------------------------------------------------------------------------

SEH_TRAFFIC: tuple[tuple[str | None, str], ...] = (
    ("open", "Normal"),
    ("busy", "Advisory"),
    ("stop", "Closed"),
    ("closed", "Closed"),
    ("stop_expired", "Closed"),
    (None, "NotApplicable"),
)
"""Our SEH status ⇄ `EMSTraffic/EMSTrafficStatus`. Reading takes the first row per HAVE value
(Closed → stop: HAVE's Closed asks EMS to re-route, our stop). Writing: closed also writes
`ServiceCoverageStatus/EmergencyDepartment` false, which reads back as closed; stop_expired is set
by our system, never read. NotApplicable (the hospital has no emergency department) gives no SEH
status. The HAVE values are exactly the schema's enumeration: there is no "Divert"."""

SEH_CLOSED_BY = ("HospitalFacilityStatus/FacilityStatus = Closed", "ServiceCoverageStatus/EmergencyDepartment = false")
"""Read as SEH closed, in this precedence: EMSTrafficStatus NotApplicable (no SEH status at all),
then these two, then EMSTrafficStatus."""

BED_TYPES: tuple[tuple[str, UnitType | None], ...] = (
    ("AdultICU", UnitType.ic_adult),
    ("PediatricICU", UnitType.picu),
    ("NeonatalICU", UnitType.nicu),
    ("EmergencyDepartment", UnitType.seh_places),
    ("MedicalSurgical", UnitType.ward_general),
    ("Pediatrics", UnitType.paediatrics),
    ("RehabLongTermCare", UnitType.grz),
    ("AdultPsychiatric", UnitType.psychiatry),
    ("PediatricPsychiatric", UnitType.psychiatry),
    ("NurseryBeds", None),
    ("Burn", None),
    ("NegativeFlowIsolation", None),
    ("OtherIsolation", None),
    ("OperatingRooms", None),
)
"""`BedCapacity/BedType` ⇄ our unit type: every BedType of the HAVE 1.0 schema, in its order.
None: no unit of ours (answered as ignored). Two BedTypes onto one unit (psychiatry) are added
up; writing uses the first row per unit. Units not in this table (medium_care, ccu, stroke,
obstetrics, elv) are not written."""

STOP_REASONS: tuple[tuple[str, str], ...] = (
    ("crowding", "Crowding"),
    ("no_ic_bed", "No ICU bed"),
    ("staffing", "Staffing"),
    ("equipment", "Equipment failure"),
    ("ict_failure", "ICT failure"),
    ("calamity", "Mass casualty incident"),
    ("other", "Other"),
)
"""Our stop reason code ⇄ `EMSTraffic/EMSTrafficReason` text (HAVE has no code list, the reason
is free text). Read: a reason equal (ignoring case) to either column becomes our code; any other
text is kept as it is (at most 200 characters)."""

EXPECTED_UNTIL = "expected until "
"""`EMSTraffic/CommentText` written as "expected until <xs:dateTime>" carries our expected_until
(HAVE 1.0 has no element for it); read back the same way. Any other comment is reason text."""

OUR_ID_TYPE = OWN_SCHEME
"""`xnl:OrganisationName/@xnl:OrganisationIDType` of the hospitals we write, with our facility
id as `@xnl:OrganisationID`: a document we produced matches without any mapping."""

TRAFFIC_TO_SEH: dict[str, str | None] = {}
for _ours, _have in SEH_TRAFFIC:
    TRAFFIC_TO_SEH.setdefault(_have, _ours)
SEH_TO_TRAFFIC: dict[str, str] = {ours: have for ours, have in SEH_TRAFFIC if ours is not None}
BED_TYPE_TO_UNIT: dict[str, UnitType | None] = dict(BED_TYPES)
UNIT_TO_BED_TYPE: dict[UnitType, str] = {}
for _have, _unit in BED_TYPES:
    if _unit is not None:
        UNIT_TO_BED_TYPE.setdefault(_unit, _have)
UNITS_NOT_WRITTEN = tuple(u for u in UnitType if u not in UNIT_TO_BED_TYPE)
REASON_FROM_HAVE = {text.casefold(): code for code, have in STOP_REASONS for text in (code, have)}
REASON_CODES = frozenset(code for code, _ in STOP_REASONS)
REASON_TO_HAVE = dict(STOP_REASONS)

# Element values the HAVE 1.0 schema restricts (checked wherever they occur in a Hospital).
ENUMERATIONS: dict[str, tuple[str, ...]] = {
    "EMSTrafficStatus": tuple(dict.fromkeys(have for _, have in SEH_TRAFFIC)),
    "BedType": tuple(have for have, _ in BED_TYPES),
    "CapacityStatus": ("Vacant/Available", "NotAvailable"),
    "EMSOffloadStatus": ("Normal", "Delayed"),
    "FacilityStatus": ("Normal", "Compromised", "Evacuating", "Closed"),
    "ClinicalStatus": ("Normal", "Full"),
    "SecurityStatus": ("Normal", "Elevated", "RestrictedAccess", "Lockdown", "Quarantine"),
    "HospitalEOCStatus": ("Active", "Inactive"),
    "HospitalEOCPlan": ("Active", "Inactive"),
    "DeconCapacityStatus": ("Inactive", "Open", "Full", "Exceeded"),
    "MorgueCapacityStatus": ("Open", "Full", "Exceeded"),
    "TriageCodeValue": ("Red", "Yellow", "Green", "Black"),
    "TraumaCenterServicesLevel": ("Level1", "Level2", "Level3", "Level4"),
    "Staffing": ("Adequate", "Insufficient"),
    "FacilityOperations": ("Adequate", "Insufficient"),
    "ClinicalOperations": ("Adequate", "Insufficient"),
}
INTEGERS = frozenset(
    {
        "AvailableCount",
        "BaselineCount",
        "AdditionalCapacityCount24Hr",
        "AdditionalCapacityCount72Hr",
        "EMSOffloadMinutes",
        "MorgueCapacityUnits",
        "TriageCountQuantity",
    }
)
"""xs:integer elements; we accept only whole numbers from 0 to MAX_COUNT."""

# The element sequences of the HAVE 1.0 schema we check: (child, min, max); None = unbounded.
Sequence = tuple[tuple[str, int, int | None], ...]


def _optional(*names: str) -> Sequence:
    return tuple((name, 0, 1) for name in names)


SEQUENCES: dict[str, Sequence] = {
    "HospitalStatus": (("Hospital", 1, None),),
    "Hospital": (
        ("Organization", 1, 1),
        ("EmergencyDepartmentStatus", 0, 1),
        ("HospitalBedCapacityStatus", 0, 1),
        ("ServiceCoverageStatus", 0, 1),
        ("HospitalFacilityStatus", 0, 1),
        ("HospitalResourcesStatus", 0, 1),
        ("LastUpdateTime", 1, 1),
    ),
    "Organization": (("OrganizationInformation", 1, 1), ("OrganizationGeoLocation", 0, 1), ("CommentText", 0, None)),
    "EmergencyDepartmentStatus": (
        ("EMSTraffic", 0, 1),
        ("EMSCapacity", 0, 1),
        ("EMSCensus", 0, 1),
        ("EMSAmbulanceStatus", 0, 1),
        ("EMSAirTransportStatus", 0, 1),
        ("CommentText", 0, None),
    ),
    "EMSTraffic": (("EMSTrafficStatus", 0, 1), ("EMSTrafficReason", 0, 1), ("CommentText", 0, 1)),
    "EMSAmbulanceStatus": (("EMSOffloadStatus", 0, 1), ("EMSOffloadMinutes", 0, 1)),
    "EMSAirTransportStatus": (("EMSOffloadStatus", 0, 1), ("EMSOffloadMinutes", 0, 1)),
    "HospitalBedCapacityStatus": (("BedCapacity", 1, None),),
    "BedCapacity": (("BedType", 0, None), ("SubCategoryBedType", 0, None), ("Capacity", 0, None), ("CommentText", 0, None)),
    "Capacity": (
        ("CapacityStatus", 0, 1),
        ("AvailableCount", 0, 1),
        ("BaselineCount", 0, 1),
        ("AdditionalCapacityCount24Hr", 0, 1),
        ("AdditionalCapacityCount72Hr", 0, 1),
    ),
    "ServiceCoverageStatus": (
        *_optional(
            "Burn",
            "CardiologyIndicator",
            "Dialysis",
            "EmergencyDepartment",
            "HyperbaricChamber",
            "InfectiousDisease",
            "Neonatology",
            "NeurologyIndicator",
            "OBGYNIndicator",
            "Ophthalmology",
            "Orthopedic",
            "Pediatrics",
            "PsychiatricIndicator",
            "SurgeryIndicator",
            "TransportServicesIndicator",
            "TraumaCenterServicesIndicator",
        ),
        ("CommentText", 0, None),
    ),
    "HospitalFacilityStatus": (
        *_optional(
            "HospitalEOCStatus",
            "HospitalEOCPlan",
            "ClinicalStatus",
            "DeconCapacity",
            "MorgueCapacity",
            "FacilityStatus",
            "SecurityStatus",
            "Activity24Hr",
        ),
        ("CommentText", 0, None),
    ),
    "HospitalResourcesStatus": (
        ("Staffing", 0, 1),
        ("FacilityOperations", 0, 1),
        ("ClinicalOperations", 0, 1),
        ("ResourcesInformationText", 0, None),
        ("CommentText", 0, None),
    ),
}
DISTRIBUTION_TYPES = ("Report", "Update")
"""EDXL-DE distributionType values whose HospitalStatus is a status report we apply; a Cancel,
Request, Ack etc. is refused, since applying it as figures would be wrong."""
MAX_DEPTH = 64
"""Deeper nesting is refused while parsing: HAVE inside EDXL-DE is about 15 levels deep."""

# ---------------------------------------------------------------------------------------------
# What the sender is told
# ---------------------------------------------------------------------------------------------


class Ignored(BaseModel):
    """Something the document says that we have no field for: answered, not applied."""

    where: str
    line: int | None = None
    element: str
    value: str | None = None
    why: str


class Offload(BaseModel):
    """`EMSAmbulanceStatus` / `EMSAirTransportStatus`: kept in the answer; not stored, since the
    canonical report has no offload field yet."""

    status: Literal["Normal", "Delayed"] | None = None
    minutes: int | None = None


class HospitalApplied(BaseModel):
    """One `Hospital` of the document: which facility it is and what happened to its figures."""

    where: str
    line: int | None
    name: str | None = Field(description="Its xnl:OrganisationName, as sent")
    facility_id: str
    region_id: str
    measured_at: datetime = Field(description="Its LastUpdateTime")
    event_id: str | None = Field(description="Null when the hospital carried nothing we apply")
    duplicate: bool = Field(description="These exact figures were applied before; nothing new")
    seh: AppliedSeh | None = None
    units: list[AppliedUnit] = []
    ignored: list[Ignored] = []
    offload: dict[str, Offload] = Field(default_factory=dict, description="`ambulance` and/or `air`, as sent (kept, not stored)")
    notes: list[str] = []


class HaveApplied(BaseModel):
    """The answer to a document applied whole."""

    hospitals: list[HospitalApplied]
    applied: int = Field(description="Hospitals with new figures applied now")
    ignored: list[Ignored] = Field(default_factory=list, description="Envelope content that is not a HospitalStatus")
    notes: list[str] = []


class SchemaUnavailable(Exception):
    """The configured edxl-have.xsd could not be loaded: a deployment problem, not the sender's."""


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass
class HospitalReading:
    """One `Hospital` as read: identity candidates, the canonical report, what was left out."""

    where: str
    line: int | None
    name: str | None
    candidates: list[tuple[str, str]]
    measured_at: datetime
    seh: dict[str, Any] | None = None
    units: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    offload: dict[str, Offload] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    no_emergency_department: bool = False
    """EMSTrafficStatus NotApplicable: no SEH status, whatever else the hospital says."""
    locations: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    """Canonical field (`seh.reason`, `units.0.available`) → the element it came from."""

    @property
    def carries_figures(self) -> bool:
        return self.seh is not None or bool(self.units)

    @property
    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"measured_at": self.measured_at}
        if self.seh is not None:
            report["seh"] = self.seh
        if self.units:
            report["units"] = self.units
        return report

    @property
    def parsed(self) -> Parsed:
        return Parsed(where=self.where, candidates=self.candidates, report=self.report, line=self.line)


@dataclass
class HaveDocument:
    hospitals: list[HospitalReading]
    ignored: list[Ignored] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Invalid(Exception):
    """A problem that stops reading this part of the document."""


class _TooDeep(Exception):
    pass


class _LineBuilder:
    """Tree builder target that notes each element's start line (ElementTree keeps none)."""

    def __init__(self) -> None:
        self._builder = ET.TreeBuilder()
        self._depth = 0
        self.expat: Any = None
        self.lines: dict[ET.Element, int] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooDeep()
        element = self._builder.start(tag, attrs)
        self.lines[element] = self.expat.CurrentLineNumber
        return element

    def end(self, tag: str) -> ET.Element:
        self._depth -= 1
        return self._builder.end(tag)

    def data(self, data: str) -> None:
        self._builder.data(data)

    def close(self) -> ET.Element:
        return self._builder.close()


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _text(element: ET.Element) -> str:
    """Text content with XML Schema whitespace collapsed."""
    return " ".join((element.text or "").split())


class _Reader:
    """One document being read: its lines, parents, and every problem found."""

    def __init__(self, root: ET.Element, lines: dict[ET.Element, int], now: datetime) -> None:
        self.root = root
        self.lines = lines
        self.now = now
        self.parents = {child: parent for parent in root.iter() for child in parent}
        self.problems: list[Problem] = []

    # -- naming places -------------------------------------------------------------------

    def path(self, element: ET.Element) -> str:
        """XPath-like location with local names, e.g. `/HospitalStatus/Hospital[2]/LastUpdateTime`."""
        steps: list[str] = []
        node: ET.Element | None = element
        while node is not None:
            parent = self.parents.get(node)
            local = _split(node.tag)[1]
            if parent is not None:
                same = [c for c in parent if c.tag == node.tag]
                if len(same) > 1 or local in ("Hospital", "BedCapacity"):
                    local = f"{local}[{same.index(node) + 1}]"
            steps.append(local)
            node = parent
        return "/" + "/".join(reversed(steps))

    def problem(self, element: ET.Element, msg: str) -> None:
        self.problems.append(Problem(where=self.path(element), line=self.lines.get(element), msg=msg))

    def ignored(self, element: ET.Element, why: str, value: str | None = None) -> Ignored:
        return Ignored(where=self.path(element), line=self.lines.get(element), element=_split(element.tag)[1], value=value, why=why)

    # -- structure ------------------------------------------------------------------------

    def children(self, element: ET.Element) -> dict[str, list[ET.Element]]:
        """The element's HAVE children by name, checked against its schema sequence: names,
        namespace, order and counts; no text between them and no attributes of their own."""
        local = _split(element.tag)[1]
        spec = SEQUENCES[local]
        order = {name: i for i, (name, _, _) in enumerate(spec)}
        found: dict[str, list[ET.Element]] = {name: [] for name, _, _ in spec}
        self._no_attributes(element)
        if (element.text or "").strip() or any((child.tail or "").strip() for child in element):
            self.problem(element, f"{local} holds elements, not text")
        last = -1
        for child in element:
            ns, name = _split(child.tag)
            if name in order and ns != HAVE_NS:
                self.problem(child, f"{name} is in namespace {ns or '(none)'!r}; EDXL-HAVE 1.0 elements are in {HAVE_NS!r}")
                continue
            if name not in order:
                expected = ", ".join(order)
                self.problem(child, f"{_qualified(child.tag)} is not allowed in {local}; EDXL-HAVE 1.0 allows {expected}")
                continue
            if order[name] < last:
                self.problem(child, f"{name} is out of order: in {local} EDXL-HAVE 1.0 wants {', '.join(order)} in that order")
            last = max(last, order[name])
            found[name].append(child)
        for name, least, most in spec:
            count = len(found[name])
            if count < least:
                self.problem(element, f"{local} needs a {name} element")
            if most is not None and count > most:
                self.problem(found[name][most], f"{name} may appear at most {most} time(s) in {local}")
        return found

    def _no_attributes(self, element: ET.Element) -> None:
        for attribute in element.attrib:
            if _split(attribute)[0] != XSI_NS:
                self.problem(element, f"attribute {_qualified(attribute)} is not allowed on {_split(element.tag)[1]}")

    def check_values(self, hospital: ET.Element) -> None:
        """Enumerations exact (case-sensitive) and integers whole and non-negative, wherever they
        occur in the hospital, also in parts we do not apply."""
        for element in hospital.iter():
            ns, local = _split(element.tag)
            if ns != HAVE_NS:
                continue
            if local in ENUMERATIONS:
                allowed = ENUMERATIONS[local]
                value = (element.text or "").strip()
                if value not in allowed:
                    hint = " (HAVE has no Divert: Closed asks EMS to re-route)" if local == "EMSTrafficStatus" else ""
                    self.problem(element, f"{value!r} is not a {local} of EDXL-HAVE 1.0; expected one of {', '.join(allowed)}{hint}")
            elif local in INTEGERS:
                self.integer(element)

    def integer(self, element: ET.Element) -> int | None:
        value = _text(element)
        local = _split(element.tag)[1]
        if not re.fullmatch(r"[+-]?[0-9]+", value):
            self.problem(element, f"{local} must be a whole number, got {value[:40]!r}")
            return None
        number = int(value)
        if not 0 <= number <= MAX_COUNT:
            self.problem(element, f"{local} must lie between 0 and {MAX_COUNT}, got {number}")
            return None
        return number

    # -- the document -----------------------------------------------------------------------

    def statuses(self) -> tuple[list[ET.Element], list[Ignored], list[str]]:
        """The HospitalStatus elements: the root itself, or those an EDXL-DE distribution embeds."""
        root = self.root
        ns, local = _split(root.tag)
        if (ns, local) == (UICDS_NS, "EdxlDeRequest"):
            inner = [c for c in root if _split(c.tag)[1] == "EDXLDistribution"]
            if len(inner) != 1:
                self.problem(root, "EdxlDeRequest must wrap exactly one EDXL-DE EDXLDistribution")
                raise _Invalid()
            root, (ns, local) = inner[0], _split(inner[0].tag)
        if local == "HospitalStatus":
            if ns != HAVE_NS:
                self._wrong_have_namespace(root, ns)
                raise _Invalid()
            return [root], [], []
        if local == "EDXLDistribution":
            if ns != DE_NS:
                self.problem(root, f"EDXLDistribution is in namespace {ns or '(none)'!r}; EDXL-DE 1.0 is {DE_NS!r}")
                raise _Invalid()
            return self._distribution(root)
        self.problem(
            root,
            f"expected an EDXL-HAVE 1.0 HospitalStatus ({HAVE_NS}), bare or in an EDXL-DE 1.0 EDXLDistribution; got {_qualified(root.tag)}",
        )
        raise _Invalid()

    def _wrong_have_namespace(self, element: ET.Element, ns: str) -> None:
        version = " (EDXL-HAVE 2.0 is not read here)" if ns.casefold() == HAVE_2_NS else ""
        self.problem(
            element,
            f"HospitalStatus is in namespace {ns or '(none)'!r}{version}; "
            f"expected EDXL-HAVE 1.0: {HAVE_NS!r} (namespaces are case-sensitive)",
        )

    def _distribution(self, distribution: ET.Element) -> tuple[list[ET.Element], list[Ignored], list[str]]:
        statuses: list[ET.Element] = []
        ignored: list[Ignored] = []
        notes: list[str] = []
        for name in ("distributionType", "distributionStatus"):
            found = distribution.find(f"{{{DE_NS}}}{name}")
            if found is None:
                self.problem(distribution, f"EDXLDistribution needs a {name}")
            elif name == "distributionType" and _text(found) not in DISTRIBUTION_TYPES:
                only = " or ".join(DISTRIBUTION_TYPES)
                self.problem(found, f"distributionType {_text(found)!r} is not a status report; only {only} is applied")
            elif name == "distributionStatus" and _text(found) != "Actual":
                status = _text(found)
                self.problem(
                    found,
                    f"distributionStatus {status!r}: only an Actual message changes live figures (a test never sends ambulances elsewhere)",
                )
        for content in distribution.findall(f"{{{DE_NS}}}contentObject"):
            for other in content.findall(f"{{{DE_NS}}}nonXMLContent"):
                ignored.append(self.ignored(other, "not an embedded EDXL-HAVE HospitalStatus"))
            for embedded in content.findall(f"{{{DE_NS}}}xmlContent/{{{DE_NS}}}embeddedXMLContent"):
                for item in embedded:
                    item_ns, item_local = _split(item.tag)
                    if item_local == "HospitalStatus" and item_ns == HAVE_NS:
                        statuses.append(item)
                    elif item_local == "HospitalStatus":
                        self._wrong_have_namespace(item, item_ns)
                    else:
                        ignored.append(self.ignored(item, "not an EDXL-HAVE 1.0 HospitalStatus"))
        if not statuses and not self.problems:
            self.problem(distribution, f"the distribution embeds no EDXL-HAVE 1.0 HospitalStatus ({HAVE_NS})")
        return statuses, ignored, notes

    # -- one hospital -----------------------------------------------------------------------

    def hospital(self, element: ET.Element) -> HospitalReading | None:
        before = len(self.problems)
        parts = self.children(element)
        self.check_values(element)
        if len(self.problems) > before or not parts["LastUpdateTime"] or not parts["Organization"]:
            return None
        measured_at = self.last_update_time(parts["LastUpdateTime"][0])
        name, candidates = self.identity(parts["Organization"][0])
        if measured_at is None:
            return None
        reading = HospitalReading(
            where=self.path(element), line=self.lines.get(element), name=name, candidates=candidates, measured_at=measured_at
        )
        reading.locations["measured_at"] = (self.path(parts["LastUpdateTime"][0]), self.lines.get(parts["LastUpdateTime"][0]))
        self.emergency_department(reading, parts["EmergencyDepartmentStatus"])
        self.beds(reading, parts["HospitalBedCapacityStatus"])
        closed_by = self.closed_by(reading, parts["HospitalFacilityStatus"], parts["ServiceCoverageStatus"])
        self.seh_closed(reading, closed_by)
        settle_stop(reading)
        for resources in parts["HospitalResourcesStatus"]:
            self.children(resources)
            reading.ignored.append(self.ignored(resources, "no field of ours for hospital resources"))
        if not reading.carries_figures:
            reading.notes.append("nothing in this hospital maps to an SEH status or a unit of ours; nothing applied for it")
        return reading if len(self.problems) == before else None

    def last_update_time(self, element: ET.Element) -> datetime | None:
        """LastUpdateTime is measured_at: an xs:dateTime with a zone, recent, not ahead."""
        try:
            when = xs_datetime(_text(element))
        except ValueError as exc:
            self.problem(element, f"LastUpdateTime: {exc}")
            return None
        if when.tzinfo is None:
            self.problem(element, "LastUpdateTime needs a time zone (Z or +hh:mm): it is the time the figures were measured")
            return None
        if when - self.now > FUTURE_TOLERANCE:
            self.problem(element, f"LastUpdateTime {_text(element)} lies more than 5 minutes in the future; check the sender's clock")
            return None
        if self.now - when > MAX_AGE:
            self.problem(element, f"LastUpdateTime {_text(element)} is more than 7 days old; live figures must be recent")
            return None
        return when

    def identity(self, organization: ET.Element) -> tuple[str | None, list[tuple[str, str]]]:
        """Candidates to match the hospital by: identifiers first, then our own ids, then names."""
        self.children(organization)
        info = organization.find(f"{{{HAVE_NS}}}OrganizationInformation")
        if info is None:
            return None, []
        ids: list[tuple[str, str]] = []
        names: list[str] = []
        org_names = info.findall(f"{{{XNL_NS}}}OrganisationName")
        if not org_names:
            self.problem(info, f"OrganizationInformation needs an xnl:OrganisationName ({XNL_NS})")
        for org in org_names:
            parts = [_text(e) for e in org.findall(f"{{{XNL_NS}}}NameElement") if _text(e)]
            if parts:
                names.append(" ".join(parts))
            value = _attribute(org, XNL_NS, "OrganisationID")
            if value:
                ids.append((_attribute(org, XNL_NS, "OrganisationIDType") or "xpil", value))
        for identifier in info.findall(f"{{{XPIL_NS}}}Identifiers/{{{XPIL_NS}}}Identifier"):
            scheme = _attribute(identifier, XPIL_NS, "Type") or "xpil"
            ids += [(scheme, _text(e)) for e in identifier.findall(f"{{{XPIL_NS}}}IdentifierElement") if _text(e)]
        candidates = ids + [(OWN_SCHEME, value) for _, value in ids] + [(NAME_SCHEME, n) for n in names]
        return (names[0] if names else None), list(dict.fromkeys(candidates))

    def emergency_department(self, reading: HospitalReading, found: list[ET.Element]) -> None:
        if not found:
            return
        parts = self.children(found[0])
        for name in ("EMSCapacity", "EMSCensus"):
            reading.ignored += [self.ignored(e, "no field of ours for EMS triage counts") for e in parts[name]]
        reading.ignored += [self.ignored(e, "no field of ours for comments") for e in parts["CommentText"]]
        for name, key in (("EMSAmbulanceStatus", "ambulance"), ("EMSAirTransportStatus", "air")):
            for offload in parts[name]:
                figures = self.children(offload)
                state = figures["EMSOffloadStatus"][0] if figures["EMSOffloadStatus"] else None
                minutes = figures["EMSOffloadMinutes"][0] if figures["EMSOffloadMinutes"] else None
                reading.offload[key] = Offload(
                    status=_text(state) if state is not None else None,  # type: ignore[arg-type]
                    minutes=self.integer(minutes) if minutes is not None else None,
                )
        if parts["EMSTraffic"]:
            self.traffic(reading, parts["EMSTraffic"][0])

    def traffic(self, reading: HospitalReading, traffic: ET.Element) -> None:
        """EMSTrafficStatus → SEH status, EMSTrafficReason (+ CommentText) → reason."""
        parts = self.children(traffic)
        status_element = parts["EMSTrafficStatus"][0] if parts["EMSTrafficStatus"] else None
        reason_element = parts["EMSTrafficReason"][0] if parts["EMSTrafficReason"] else None
        comment_element = parts["CommentText"][0] if parts["CommentText"] else None
        if status_element is None:
            for element in (reason_element, comment_element):
                if element is not None:
                    reading.ignored.append(self.ignored(element, "no EMSTrafficStatus to go with it", _text(element)))
            return
        have = _text(status_element)
        ours = TRAFFIC_TO_SEH.get(have)
        if ours is None:
            reading.no_emergency_department = True
            reading.notes.append("EMSTrafficStatus NotApplicable: the hospital has no emergency department; no SEH status applied")
            for element in (reason_element, comment_element):
                if element is not None:
                    reading.ignored.append(self.ignored(element, "EMSTrafficStatus NotApplicable: no SEH status", _text(element)))
            return
        reasons = [from_have_reason(_text(reason_element))] if reason_element is not None and _text(reason_element) else []
        expected_until = None
        if comment_element is not None and _text(comment_element):
            comment = _text(comment_element)
            expected_until = expected_until_of(comment)
            if expected_until is None:
                reasons.append(comment)
        reading.seh = {"status": ours, "reason": "; ".join(reasons) or None, "expected_until": expected_until}
        reading.locations["seh"] = (self.path(status_element), self.lines.get(status_element))
        reading.locations["seh.status"] = reading.locations["seh"]
        text_source = reason_element if reason_element is not None else comment_element
        if text_source is not None:
            reading.locations["seh.reason"] = (self.path(text_source), self.lines.get(text_source))
        if comment_element is not None:
            reading.locations["seh.expected_until"] = (self.path(comment_element), self.lines.get(comment_element))

    def closed_by(self, reading: HospitalReading, facility: list[ET.Element], services: list[ET.Element]) -> ET.Element | None:
        """The element that says the SEH is closed, if any; the rest of these is ignored."""
        closed: ET.Element | None = None
        for container, wanted, says_closed in (
            (facility, "FacilityStatus", lambda v: v == "Closed"),
            (services, "EmergencyDepartment", lambda v: v in ("false", "0")),
        ):
            if not container:
                continue
            parts = self.children(container[0])
            for name, elements in parts.items():
                for element in elements:
                    value = _text(element) if len(element) == 0 else None
                    if name == wanted:
                        if wanted == "EmergencyDepartment" and value not in ("true", "false", "1", "0"):
                            self.problem(element, f"EmergencyDepartment must be true or false, got {value!r}")
                        elif says_closed(value):
                            closed = closed if closed is not None else element
                            continue
                    reading.ignored.append(self.ignored(element, "no field of ours for it", value))
        return closed

    def seh_closed(self, reading: HospitalReading, closed_by: ET.Element | None) -> None:
        """Precedence: NotApplicable (no SEH) > FacilityStatus Closed > EmergencyDepartment false > EMSTrafficStatus."""
        if closed_by is None:
            return
        said = f"{_split(closed_by.tag)[1]} {_text(closed_by)}"
        if reading.no_emergency_department:
            reading.ignored.append(self.ignored(closed_by, "EMSTrafficStatus NotApplicable: no emergency department", _text(closed_by)))
            return
        if reading.seh is None:
            reading.seh = {"status": "closed", "reason": None, "expected_until": None}
        elif reading.seh["status"] != "closed":
            reading.notes.append(f"{said}: SEH closed, not {reading.seh['status']} as EMSTrafficStatus says")
            reading.seh["status"] = "closed"
        reading.locations["seh.status"] = (self.path(closed_by), self.lines.get(closed_by))

    def beds(self, reading: HospitalReading, found: list[ET.Element]) -> None:
        """Each BedCapacity → a unit through BED_TYPES; two BedTypes onto one unit are added up."""
        if not found:
            return
        by_unit: dict[UnitType, dict[str, Any]] = {}
        sources: dict[UnitType, list[str]] = {}
        seen: dict[str, ET.Element] = {}
        for capacity in self.children(found[0])["BedCapacity"]:
            parts = self.children(capacity)
            if len(parts["BedType"]) != 1:
                found_types = len(parts["BedType"])
                self.problem(capacity, f"BedCapacity needs exactly one BedType to say what its counts are for (found {found_types})")
                continue
            bed_type_element = parts["BedType"][0]
            bed_type = _text(bed_type_element)
            if bed_type in seen:
                also = self.lines.get(seen[bed_type])
                self.problem(bed_type_element, f"BedType {bed_type} appears twice in this Hospital (also at line {also})")
                continue
            seen[bed_type] = bed_type_element
            reading.ignored += [self.ignored(e, "sub-category bed types: no unit of ours", _text(e)) for e in parts["SubCategoryBedType"]]
            reading.ignored += [self.ignored(e, "no field of ours for comments") for e in parts["CommentText"]]
            counts = parts["Capacity"]
            if len(counts) > 1 and not parts["SubCategoryBedType"]:
                self.problem(counts[1], "BedCapacity may hold one Capacity for its BedType (more only for sub-category bed types)")
                continue
            reading.ignored += [self.ignored(e, "counts for a sub-category bed type: no unit of ours") for e in counts[1:]]
            unit = BED_TYPE_TO_UNIT.get(bed_type)
            if unit is None:
                said = ", ".join(f"{_split(e.tag)[1]} {_text(e)}" for c in counts[:1] for e in c if _text(e))
                why = f"no unit type of ours for BedType {bed_type}" + (f" ({said} not applied)" if said else "")
                reading.ignored.append(self.ignored(bed_type_element, why, bed_type))
                continue
            figures = self.capacity(reading, counts[0]) if counts else {"staffed": None, "available": None}
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
            where = (self.path(capacity), self.lines.get(capacity))
            reading.locations[f"units.{index}"] = where
            if counts:
                for key, name in (("staffed", "BaselineCount"), ("available", "AvailableCount")):
                    element = counts[0].find(f"{{{HAVE_NS}}}{name}")
                    if element is not None:
                        reading.locations[f"units.{index}.{key}"] = (self.path(element), self.lines.get(element))

    def capacity(self, reading: HospitalReading, capacity: ET.Element) -> dict[str, int | None] | None:
        """Capacity → staffed (BaselineCount) and available (AvailableCount; NotAvailable is 0)."""
        parts = self.children(capacity)
        status_element = parts["CapacityStatus"][0] if parts["CapacityStatus"] else None
        available = self.integer(parts["AvailableCount"][0]) if parts["AvailableCount"] else None
        staffed = self.integer(parts["BaselineCount"][0]) if parts["BaselineCount"] else None
        for name in ("AdditionalCapacityCount24Hr", "AdditionalCapacityCount72Hr"):
            reading.ignored += [self.ignored(e, "no field of ours for surge beds", _text(e)) for e in parts[name]]
        if status_element is not None and _text(status_element) == "NotAvailable":
            if available:
                self.problem(status_element, f"CapacityStatus NotAvailable contradicts AvailableCount {available}")
                return None
            available = 0
        return {"staffed": staffed, "available": available}


def _qualified(tag: str) -> str:
    ns, local = _split(tag)
    return f"{local} ({ns})" if ns else local


def _attribute(element: ET.Element, ns: str, name: str) -> str | None:
    value = element.get(f"{{{ns}}}{name}", element.get(name))
    return " ".join(value.split()) if value else None


_XS_DATETIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def xs_datetime(text: str) -> datetime:
    """An xs:dateTime (naive when it has no zone). ValueError says what is wrong."""
    match = _XS_DATETIME.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text[:40]!r} is not an xs:dateTime such as 2026-11-24T10:15:00+01:00")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    next_day = hour == 24 and minute == second == 0 and not fraction.strip("0")
    try:
        value = datetime(year, month, day, 0 if next_day else hour, minute, second, int((fraction + "000000")[:6]))
    except ValueError as exc:
        raise ValueError(f"{text[:40]!r} is not a valid date and time ({exc})") from None
    if next_day:
        if value.date() == date.max:
            raise ValueError(f"{text[:40]!r} is not a valid date and time (24:00 of the calendar's last day)")
        value += timedelta(days=1)
    if zone is None:
        return value
    if zone == "Z":
        return value.replace(tzinfo=UTC)
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"{zone} is not a time zone offset")
    offset = timedelta(hours=hours, minutes=minutes)
    return value.replace(tzinfo=timezone(-offset if zone[0] == "-" else offset))


def expected_until_of(comment: str) -> datetime | None:
    """The time in a comment "expected until <xs:dateTime with zone>" (as we write it), else None."""
    if not comment.casefold().startswith(EXPECTED_UNTIL):
        return None
    try:
        value = xs_datetime(comment[len(EXPECTED_UNTIL) :])
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


DEFAULT_STOP = timedelta(hours=1)
"""HAVE has no expected end for a re-route: without our "expected until" comment a stop is taken
to last an hour from LastUpdateTime, after which it expires and the hospital is asked to confirm."""


def settle_stop(reading: HospitalReading) -> None:
    """Give a HAVE stop or closure what our stops need: a reason code (the HAVE text as `other`
    when it is none of ours) and an expected end; an open SEH carries neither."""
    seh = reading.seh
    if seh is None:
        return
    text = seh.pop("reason", None)
    if seh["status"] not in ("stop", "closed"):
        if text or seh.get("expected_until"):
            reading.notes.append(f"EMSTraffic reason or comment ({text or seh['expected_until']}) ignored: the SEH is {seh['status']}")
        seh.update(reason=None, reason_text=None, expected_until=None)
        return
    if "seh.reason" in reading.locations:
        reading.locations["seh.reason_text"] = reading.locations["seh.reason"]
    code = from_have_reason(text) if text else None
    if code in REASON_CODES and code != "other":
        seh.update(reason=code, reason_text=None)
    else:
        said = text if text and code not in REASON_CODES else None
        seh.update(reason="other", reason_text=said or "no reason given in the EDXL-HAVE document")
    if seh.get("expected_until") is None:
        seh["expected_until"] = reading.measured_at + DEFAULT_STOP
        reading.notes.append(
            f"no expected end in the document: the {seh['status']} is taken to last until "
            f"{utc_iso(seh['expected_until'])}, then it expires unless the hospital confirms it"
        )


def from_have_reason(text: str) -> str:
    return REASON_FROM_HAVE.get(text.casefold(), text)


def to_have_reason(reason: str) -> str:
    return REASON_TO_HAVE.get(reason, reason)


def _parse(body: bytes) -> tuple[ET.Element, dict[ET.Element, int]]:
    """Parse through defusedxml only: a DTD, entity or external reference is refused."""
    builder = _LineBuilder()
    parser = XMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.expat = parser.parser

    def refused(msg: str, line: int | None = None) -> DocumentRejected:
        line = line if line is not None else builder.expat.CurrentLineNumber
        return DocumentRejected(status.HTTP_422_UNPROCESSABLE_CONTENT, [Problem(where="document", line=line, msg=msg)])

    try:
        parser.feed(body)
        root = parser.close()
    except DefusedXmlException as exc:
        raise refused(
            f"a DTD (<!DOCTYPE>) or entity is not accepted ({exc.__class__.__name__}); EDXL-HAVE needs none and they allow entity attacks"
        ) from None
    except _TooDeep:
        raise refused(f"elements nested deeper than {MAX_DEPTH} levels") from None
    except ET.ParseError as exc:
        raise refused(f"not well-formed XML: {exc}", exc.position[0]) from None
    except (ValueError, LookupError, UnicodeError) as exc:  # e.g. an encoding expat and Python do not know
        raise refused(f"the XML could not be read: {exc}") from None
    return root, builder.lines


@lru_cache(maxsize=4)
def _schema(path: Path) -> Any:
    """The configured edxl-have.xsd, loaded once (local files only, no network)."""
    import xmlschema

    try:
        return xmlschema.XMLSchema10(str(path), allow="local", defuse="always")
    except Exception as exc:  # xmlschema raises many kinds; any of them means the deployment's file is unusable
        raise SchemaUnavailable(f"edxl_have_schema {path} could not be loaded: {exc}") from exc


def _schema_problems(reader: _Reader, statuses: list[ET.Element], schema_path: Path) -> list[Problem]:
    schema = _schema(schema_path)
    problems: list[Problem] = []
    for element in statuses:
        try:
            errors = list(schema.iter_errors(element, use_location_hints=False))
        except RecursionError:
            return [Problem(where=reader.path(element), line=reader.lines.get(element), msg="too deeply nested to check")]
        for error in errors:
            found = error.elem if isinstance(error.elem, ET.Element) and error.elem in reader.lines else element
            reason = error.reason or str(error.message)
            problems.append(Problem(where=reader.path(found), line=reader.lines.get(found), msg=f"EDXL-HAVE 1.0 schema: {reason}"))
    return problems


def read_hospital_status(*, body: bytes, now: datetime | None = None, schema: Path | None = None) -> HaveDocument:
    """Read a HAVE document into one reading per Hospital, or DocumentRejected (422) naming every
    element that does not fit, with its line. `schema`: also check against the full XSD."""
    root, lines = _parse(body)
    reader = _Reader(root, lines, now or datetime.now(UTC))
    try:
        statuses, ignored, notes = reader.statuses()
    except _Invalid:
        statuses, ignored, notes = [], [], []
    hospitals: list[HospitalReading] = []
    for hospital_status in statuses:
        for hospital in reader.children(hospital_status)["Hospital"]:
            reading = reader.hospital(hospital)
            if reading is not None:
                hospitals.append(reading)
    if not reader.problems and schema is not None:
        reader.problems += _schema_problems(reader, statuses, schema)
    if reader.problems:
        raise DocumentRejected(status.HTTP_422_UNPROCESSABLE_CONTENT, reader.problems)
    return HaveDocument(hospitals=hospitals, ignored=ignored, notes=notes)


# ---------------------------------------------------------------------------------------------
# Applying
# ---------------------------------------------------------------------------------------------


def _located(problem: Problem, readings: list[HospitalReading]) -> Problem:
    """Name the HAVE element a canonical-model problem is about (`... units.0.available` → AvailableCount)."""
    for reading in readings:
        if problem.where == reading.where or not problem.where.startswith(reading.where + " "):
            continue
        field_name = problem.where[len(reading.where) + 1 :]
        parts = field_name.split(".")
        for size in range(len(parts), 0, -1):
            found = reading.locations.get(".".join(parts[:size]))
            if found is not None:
                return Problem(where=found[0], line=found[1], msg=f"{problem.msg} (our field {field_name})")
    return problem


def _hospital_index(problem: Problem, readings: list[HospitalReading]) -> int:
    for index, reading in enumerate(readings):
        if problem.where == reading.where or problem.where.startswith(reading.where + "/") or problem.where.startswith(reading.where + " "):
            return index
    return len(readings)


async def apply_have(
    *,
    document: HaveDocument,
    identifiers: IdentifierBook,
    registry: Registry,
    who: Principal,
    applier: Applier,
    stream_maxlen: int,
    record: EventLog | None,
) -> HaveApplied:
    """Match every hospital, check the key may send it, then apply all figures in one atomic
    script (capacity.interop.service), or nothing: DocumentRejected with every problem.

    A hospital with nothing of ours to apply (only Burn beds, say) is still matched and checked,
    so an unknown or forbidden hospital refuses the document even then."""
    readings = document.hospitals
    carrying = [r for r in readings if r.carries_figures]
    problems: list[Problem] = []
    forbidden: list[Problem] = []
    items: list[tuple[Facility, Report]] = []
    if carrying:
        try:
            items = await resolve_reports(parsed=[r.parsed for r in carrying], identifiers=identifiers, registry=registry, who=who)
        except DocumentRejected as rejected:
            (forbidden if rejected.status_code == status.HTTP_403_FORBIDDEN else problems).extend(rejected.problems)
    facility_of: dict[int, str] = {}
    seen: dict[str, HospitalReading] = {}
    for index, reading in enumerate(readings):
        facility_id = await identifiers.resolve(reading.candidates)
        if facility_id is None:
            if not reading.carries_figures:
                named = ", ".join(f"{s}|{v}" for s, v in reading.candidates) or "no identifier"
                msg = f"unknown facility ({named}); an admin maps identifiers"
                problems.append(Problem(where=reading.where, line=reading.line, msg=msg))
            continue
        facility_of[index] = facility_id
        earlier = seen.setdefault(facility_id, reading)
        if earlier is not reading and not (earlier.carries_figures and reading.carries_figures):
            twice = f"facility {facility_id} is also reported at {earlier.where}"
            problems.append(Problem(where=reading.where, line=reading.line, msg=twice))
        if not reading.carries_figures and not may_send(who, registry.facilities[facility_id]):
            forbidden.append(Problem(where=reading.where, line=reading.line, msg=f"this key may not write facility {facility_id!r}"))
    if problems:
        located = sorted((_located(p, readings) for p in problems), key=lambda p: _hospital_index(p, readings))
        raise DocumentRejected(status.HTTP_422_UNPROCESSABLE_CONTENT, located)
    if forbidden:
        raise DocumentRejected(status.HTTP_403_FORBIDDEN, sorted(forbidden, key=lambda p: _hospital_index(p, readings)))
    applied: list[ReportResult] = []
    if carrying:
        applied = await apply_resolved(
            parsed=[r.parsed for r in carrying],
            items=items,
            who=who,
            applier=applier,
            stream_maxlen=stream_maxlen,
            record=record,
        )
    results = iter(applied)
    hospitals: list[HospitalApplied] = []
    for index, reading in enumerate(readings):
        facility = registry.facilities[facility_of[index]]
        common = {
            "where": reading.where,
            "line": reading.line,
            "name": reading.name,
            "ignored": reading.ignored,
            "offload": reading.offload,
            "notes": reading.notes,
        }
        if reading.carries_figures:
            result = next(results)
            hospitals.append(
                HospitalApplied(
                    **common,
                    facility_id=result.facility_id,
                    region_id=result.region_id,
                    measured_at=result.measured_at,
                    event_id=result.event_id,
                    duplicate=result.duplicate,
                    seh=result.seh,
                    units=result.units,
                )
            )
        else:
            hospitals.append(
                HospitalApplied(
                    **common,
                    facility_id=facility.id,
                    region_id=facility.region_id,
                    measured_at=reading.measured_at,
                    event_id=None,
                    duplicate=False,
                )
            )
    fresh = sum(1 for h in hospitals if h.event_id is not None and not h.duplicate)
    return HaveApplied(hospitals=hospitals, applied=fresh, ignored=document.ignored, notes=document.notes)


# ---------------------------------------------------------------------------------------------
# Producing
# ---------------------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None, attrib: dict[str, str] | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib or {})
    if text is not None:
        element.text = text
    return element


def _hospital(facility: FacilityState) -> ET.Element | None:
    """One facility as a HAVE Hospital, children in the schema's order; None if it has nothing
    HAVE can say (never reported, or only units without a BedType)."""
    seh = facility.seh
    units = [(unit, UNIT_TO_BED_TYPE[unit.type]) for unit in facility.units if unit.type in UNIT_TO_BED_TYPE]
    if seh is None and not units:
        return None
    hospital = ET.Element("Hospital")
    organization = _sub(hospital, "Organization")
    information = _sub(organization, "OrganizationInformation")
    name = _sub(information, "xnl:OrganisationName", attrib={"xnl:OrganisationID": facility.id, "xnl:OrganisationIDType": OUR_ID_TYPE})
    _sub(name, "xnl:NameElement", facility.name)
    point = _sub(_sub(organization, "OrganizationGeoLocation"), "gml:Point")
    _sub(point, "gml:pos", f"{facility.lat} {facility.lon}")
    if seh is not None and seh.status in SEH_TO_TRAFFIC:
        traffic = _sub(_sub(hospital, "EmergencyDepartmentStatus"), "EMSTraffic")
        _sub(traffic, "EMSTrafficStatus", SEH_TO_TRAFFIC[seh.status])
        if seh.reason:
            said = seh.reason_text if seh.reason == "other" and seh.reason_text else to_have_reason(seh.reason)
            _sub(traffic, "EMSTrafficReason", said)
        if seh.expected_until is not None:
            _sub(traffic, "CommentText", EXPECTED_UNTIL + utc_iso(seh.expected_until))
    if units:
        beds = _sub(hospital, "HospitalBedCapacityStatus")
        for unit, bed_type in units:
            bed = _sub(beds, "BedCapacity")
            _sub(bed, "BedType", bed_type)
            if unit.available is None and unit.staffed is None:
                continue
            capacity = _sub(bed, "Capacity")
            if unit.available is not None:
                _sub(capacity, "CapacityStatus", "Vacant/Available" if unit.available > 0 else "NotAvailable")
                _sub(capacity, "AvailableCount", str(unit.available))
            if unit.staffed is not None:
                _sub(capacity, "BaselineCount", str(unit.staffed))
    if seh is not None and seh.status == "closed":
        _sub(_sub(hospital, "ServiceCoverageStatus"), "EmergencyDepartment", "false")
    times = ([seh.measured_at] if seh is not None else []) + [unit.measured_at for unit, _ in units]
    _sub(hospital, "LastUpdateTime", utc_iso(max(times)))
    return hospital


def hospital_status_xml(*, board: RegionBoard) -> bytes | None:
    """The region's live state as an EDXL-HAVE 1.0 HospitalStatus (UTF-8 XML), one Hospital per
    facility with something to say; None when there is none (the schema needs one Hospital).

    Written with literal prefixes rather than ElementTree's global namespace registry, so other
    modules' XML is not affected."""
    hospitals = [h for f in board.facilities if (h := _hospital(f)) is not None]
    if not hospitals:
        return None
    root = ET.Element("HospitalStatus", {"xmlns": HAVE_NS, "xmlns:xnl": XNL_NS, "xmlns:gml": GML_NS})
    root.extend(hospitals)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
