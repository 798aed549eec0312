"""EDXL-HAVE 1.0: namespaces, the one mapping table, the schema parts we check, and its value types.

Both directions use the one mapping table (`SEH_TRAFFIC`, `BED_TYPES`, `STOP_REASONS`);
`feeds/EDXL-HAVE.md` shows the same table for people. A HAVE 2.0 adapter would add its element
names and namespace next to these and keep the rest.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from capacity.domain import UnitType
from feeds.documents import OWN_SCHEME

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


def from_have_reason(text: str) -> str:
    return REASON_FROM_HAVE.get(text.casefold(), text)


def to_have_reason(reason: str) -> str:
    return REASON_TO_HAVE.get(reason, reason)


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
