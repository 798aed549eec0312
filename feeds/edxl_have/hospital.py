"""One `Hospital`: its identity, LastUpdateTime, emergency department and facility status
(read as our SEH status) and beds (feeds.edxl_have.beds), as a HospitalReading."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

from capacity.reports.models import FUTURE_TOLERANCE, MAX_AGE
from feeds.documents import NAME_SCHEME, OWN_SCHEME
from feeds.edxl_have.beds import beds
from feeds.edxl_have.codes import HAVE_NS, TRAFFIC_TO_SEH, XNL_NS, XPIL_NS, expected_until_of, from_have_reason, xs_datetime
from feeds.edxl_have.reading import HospitalReading, Offload, settle_stop
from feeds.edxl_have.tree import Tree, attribute, split, text


def hospital(*, tree: Tree, element: ET.Element) -> HospitalReading | None:
    """One Hospital as a reading, or None when it has problems (kept on `tree`)."""
    before = len(tree.problems)
    parts = tree.children(element)
    tree.check_values(element)
    if len(tree.problems) > before or not parts["LastUpdateTime"] or not parts["Organization"]:
        return None
    measured_at = _last_update_time(tree, parts["LastUpdateTime"][0])
    name, candidates = _identity(tree, parts["Organization"][0])
    if measured_at is None:
        return None
    reading = HospitalReading(
        where=tree.path(element), line=tree.lines.get(element), name=name, candidates=candidates, measured_at=measured_at
    )
    reading.locations["measured_at"] = (tree.path(parts["LastUpdateTime"][0]), tree.lines.get(parts["LastUpdateTime"][0]))
    _emergency_department(tree, reading, parts["EmergencyDepartmentStatus"])
    beds(tree=tree, reading=reading, found=parts["HospitalBedCapacityStatus"])
    closed_by = _closed_by(tree, reading, parts["HospitalFacilityStatus"], parts["ServiceCoverageStatus"])
    _seh_closed(tree, reading, closed_by)
    settle_stop(reading)
    for resources in parts["HospitalResourcesStatus"]:
        tree.children(resources)
        reading.ignored.append(tree.ignored(resources, "no field of ours for hospital resources"))
    if not reading.carries_figures:
        reading.notes.append("nothing in this hospital maps to an SEH status or a unit of ours; nothing applied for it")
    return reading if len(tree.problems) == before else None


def _last_update_time(tree: Tree, element: ET.Element) -> datetime | None:
    """LastUpdateTime is measured_at: an xs:dateTime with a zone, recent, not ahead."""
    try:
        when = xs_datetime(text(element))
    except ValueError as exc:
        tree.problem(element, f"LastUpdateTime: {exc}")
        return None
    if when.tzinfo is None:
        tree.problem(element, "LastUpdateTime needs a time zone (Z or +hh:mm): it is the time the figures were measured")
        return None
    if when - tree.now > FUTURE_TOLERANCE:
        tree.problem(element, f"LastUpdateTime {text(element)} lies more than 5 minutes in the future; check the sender's clock")
        return None
    if tree.now - when > MAX_AGE:
        tree.problem(element, f"LastUpdateTime {text(element)} is more than 7 days old; live figures must be recent")
        return None
    return when


def _identity(tree: Tree, organization: ET.Element) -> tuple[str | None, list[tuple[str, str]]]:
    """Candidates to match the hospital by: identifiers first, then our own ids, then names."""
    tree.children(organization)
    info = organization.find(f"{{{HAVE_NS}}}OrganizationInformation")
    if info is None:
        return None, []
    ids: list[tuple[str, str]] = []
    names: list[str] = []
    org_names = info.findall(f"{{{XNL_NS}}}OrganisationName")
    if not org_names:
        tree.problem(info, f"OrganizationInformation needs an xnl:OrganisationName ({XNL_NS})")
    for org in org_names:
        parts = [text(e) for e in org.findall(f"{{{XNL_NS}}}NameElement") if text(e)]
        if parts:
            names.append(" ".join(parts))
        value = attribute(org, XNL_NS, "OrganisationID")
        if value:
            ids.append((attribute(org, XNL_NS, "OrganisationIDType") or "xpil", value))
    for identifier in info.findall(f"{{{XPIL_NS}}}Identifiers/{{{XPIL_NS}}}Identifier"):
        scheme = attribute(identifier, XPIL_NS, "Type") or "xpil"
        ids += [(scheme, text(e)) for e in identifier.findall(f"{{{XPIL_NS}}}IdentifierElement") if text(e)]
    candidates = ids + [(OWN_SCHEME, value) for _, value in ids] + [(NAME_SCHEME, n) for n in names]
    return (names[0] if names else None), list(dict.fromkeys(candidates))


def _emergency_department(tree: Tree, reading: HospitalReading, found: list[ET.Element]) -> None:
    if not found:
        return
    parts = tree.children(found[0])
    for name in ("EMSCapacity", "EMSCensus"):
        reading.ignored += [tree.ignored(e, "no field of ours for EMS triage counts") for e in parts[name]]
    reading.ignored += [tree.ignored(e, "no field of ours for comments") for e in parts["CommentText"]]
    for name, key in (("EMSAmbulanceStatus", "ambulance"), ("EMSAirTransportStatus", "air")):
        for offload in parts[name]:
            figures = tree.children(offload)
            state = figures["EMSOffloadStatus"][0] if figures["EMSOffloadStatus"] else None
            minutes = figures["EMSOffloadMinutes"][0] if figures["EMSOffloadMinutes"] else None
            reading.offload[key] = Offload(
                status=text(state) if state is not None else None,  # type: ignore[arg-type]
                minutes=tree.integer(minutes) if minutes is not None else None,
            )
    if parts["EMSTraffic"]:
        _traffic(tree, reading, parts["EMSTraffic"][0])


def _traffic(tree: Tree, reading: HospitalReading, traffic: ET.Element) -> None:
    """EMSTrafficStatus → SEH status, EMSTrafficReason (+ CommentText) → reason."""
    parts = tree.children(traffic)
    status_element = parts["EMSTrafficStatus"][0] if parts["EMSTrafficStatus"] else None
    reason_element = parts["EMSTrafficReason"][0] if parts["EMSTrafficReason"] else None
    comment_element = parts["CommentText"][0] if parts["CommentText"] else None
    if status_element is None:
        for element in (reason_element, comment_element):
            if element is not None:
                reading.ignored.append(tree.ignored(element, "no EMSTrafficStatus to go with it", text(element)))
        return
    have = text(status_element)
    ours = TRAFFIC_TO_SEH.get(have)
    if ours is None:
        reading.no_emergency_department = True
        reading.notes.append("EMSTrafficStatus NotApplicable: the hospital has no emergency department; no SEH status applied")
        for element in (reason_element, comment_element):
            if element is not None:
                reading.ignored.append(tree.ignored(element, "EMSTrafficStatus NotApplicable: no SEH status", text(element)))
        return
    reasons = [from_have_reason(text(reason_element))] if reason_element is not None and text(reason_element) else []
    expected_until = None
    if comment_element is not None and text(comment_element):
        comment = text(comment_element)
        expected_until = expected_until_of(comment)
        if expected_until is None:
            reasons.append(comment)
    reading.seh = {"status": ours, "reason": "; ".join(reasons) or None, "expected_until": expected_until}
    reading.locations["seh"] = (tree.path(status_element), tree.lines.get(status_element))
    reading.locations["seh.status"] = reading.locations["seh"]
    text_source = reason_element if reason_element is not None else comment_element
    if text_source is not None:
        reading.locations["seh.reason"] = (tree.path(text_source), tree.lines.get(text_source))
    if comment_element is not None:
        reading.locations["seh.expected_until"] = (tree.path(comment_element), tree.lines.get(comment_element))


def _closed_by(tree: Tree, reading: HospitalReading, facility: list[ET.Element], services: list[ET.Element]) -> ET.Element | None:
    """The element that says the SEH is closed, if any; the rest of these is ignored."""
    closed: ET.Element | None = None
    for container, wanted, says_closed in (
        (facility, "FacilityStatus", lambda v: v == "Closed"),
        (services, "EmergencyDepartment", lambda v: v in ("false", "0")),
    ):
        if not container:
            continue
        parts = tree.children(container[0])
        for name, elements in parts.items():
            for element in elements:
                value = text(element) if len(element) == 0 else None
                if name == wanted:
                    if wanted == "EmergencyDepartment" and value not in ("true", "false", "1", "0"):
                        tree.problem(element, f"EmergencyDepartment must be true or false, got {value!r}")
                    elif says_closed(value):
                        closed = closed if closed is not None else element
                        continue
                reading.ignored.append(tree.ignored(element, "no field of ours for it", value))
    return closed


def _seh_closed(tree: Tree, reading: HospitalReading, closed_by: ET.Element | None) -> None:
    """Precedence: NotApplicable (no SEH) > FacilityStatus Closed > EmergencyDepartment false > EMSTrafficStatus."""
    if closed_by is None:
        return
    said = f"{split(closed_by.tag)[1]} {text(closed_by)}"
    if reading.no_emergency_department:
        reading.ignored.append(tree.ignored(closed_by, "EMSTrafficStatus NotApplicable: no emergency department", text(closed_by)))
        return
    if reading.seh is None:
        reading.seh = {"status": "closed", "reason": None, "expected_until": None}
    elif reading.seh["status"] != "closed":
        reading.notes.append(f"{said}: SEH closed, not {reading.seh['status']} as EMSTrafficStatus says")
        reading.seh["status"] = "closed"
    reading.locations["seh.status"] = (tree.path(closed_by), tree.lines.get(closed_by))
