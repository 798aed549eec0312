"""Reading an EDXL-HAVE 1.0 `HospitalStatus`, bare or inside an EDXL-DE 1.0 `EDXLDistribution`.

Parsed with defusedxml only (no DTD, no entities, no network), checked strictly against the parts
of the HAVE 1.0 schema we read, and turned into one canonical report per `Hospital`
(feeds.documents.Parsed). What HAVE says that we have no field for is kept as ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from feeds.documents import DocumentRejected, Problem
from feeds.edxl_have.envelope import statuses as find_statuses
from feeds.edxl_have.hospital import hospital as read_hospital
from feeds.edxl_have.reading import HaveDocument, HospitalReading, SchemaUnavailable
from feeds.edxl_have.tree import Invalid, Tree, parse

UNPROCESSABLE = 422


@lru_cache(maxsize=4)
def _schema(path: Path) -> Any:
    """The configured edxl-have.xsd, loaded once (local files only, no network)."""
    import xmlschema

    try:
        return xmlschema.XMLSchema10(str(path), allow="local", defuse="always")
    except Exception as exc:  # xmlschema raises many kinds; any of them means the deployment's file is unusable
        raise SchemaUnavailable(f"edxl_have_schema {path} could not be loaded: {exc}") from exc


def _schema_problems(tree: Tree, statuses: list[ET.Element], schema_path: Path) -> list[Problem]:
    schema = _schema(schema_path)
    problems: list[Problem] = []
    for element in statuses:
        try:
            errors = list(schema.iter_errors(element, use_location_hints=False))
        except RecursionError:
            return [Problem(where=tree.path(element), line=tree.lines.get(element), msg="too deeply nested to check")]
        for error in errors:
            found = error.elem if isinstance(error.elem, ET.Element) and error.elem in tree.lines else element
            reason = error.reason or str(error.message)
            problems.append(Problem(where=tree.path(found), line=tree.lines.get(found), msg=f"EDXL-HAVE 1.0 schema: {reason}"))
    return problems


def read_hospital_status(*, body: bytes, now: datetime | None = None, schema: Path | None = None) -> HaveDocument:
    """Read a HAVE document into one reading per Hospital, or DocumentRejected (422) naming every
    element that does not fit, with its line. `schema`: also check against the full XSD."""
    root, lines = parse(body)
    tree = Tree(root, lines, now or datetime.now(UTC))
    try:
        statuses, ignored, notes = find_statuses(tree=tree)
    except Invalid:
        statuses, ignored, notes = [], [], []
    hospitals: list[HospitalReading] = []
    for hospital_status in statuses:
        for hospital in tree.children(hospital_status)["Hospital"]:
            reading = read_hospital(tree=tree, element=hospital)
            if reading is not None:
                hospitals.append(reading)
    if not tree.problems and schema is not None:
        tree.problems += _schema_problems(tree, statuses, schema)
    if tree.problems:
        raise DocumentRejected(UNPROCESSABLE, tree.problems)
    return HaveDocument(hospitals=hospitals, ignored=ignored, notes=notes)
