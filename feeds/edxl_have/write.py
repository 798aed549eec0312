"""Writing a region's live state as an EDXL-HAVE 1.0 `HospitalStatus` that validates against the
OASIS schema and, posted back, gives the same figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from capacity.domain import utc_iso
from feeds.edxl_have.codes import EXPECTED_UNTIL, GML_NS, HAVE_NS, OUR_ID_TYPE, SEH_TO_TRAFFIC, UNIT_TO_BED_TYPE, XNL_NS, to_have_reason
from feeds.figures import FacilityFigures


def _sub(parent: ET.Element, tag: str, text: str | None = None, attrib: dict[str, str] | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib or {})
    if text is not None:
        element.text = text
    return element


def _hospital(facility: FacilityFigures) -> ET.Element | None:
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


def hospital_status_xml(*, facilities: Iterable[FacilityFigures]) -> bytes | None:
    """A region's live state (its board's facilities) as an EDXL-HAVE 1.0 HospitalStatus (UTF-8 XML),
    one Hospital per facility with something to say; None when there is none (the schema needs one).

    Written with literal prefixes rather than ElementTree's global namespace registry, so other
    modules' XML is not affected."""
    hospitals = [h for f in facilities if (h := _hospital(f)) is not None]
    if not hospitals:
        return None
    root = ET.Element("HospitalStatus", {"xmlns": HAVE_NS, "xmlns:xnl": XNL_NS, "xmlns:gml": GML_NS})
    root.extend(hospitals)
    ET.indent(root)
    written: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)  # typeshed: Any for a named encoding
    return written
