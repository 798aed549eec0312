"""An EDXL-HAVE document as an XML tree: parsed through defusedxml with each element's line,
checked against the schema sequences we read, and every problem found kept with its place."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import XMLParser

from capacity.reports.models import MAX_COUNT
from feeds.documents import DocumentRejected, Problem
from feeds.edxl_have.codes import ENUMERATIONS, HAVE_NS, INTEGERS, MAX_DEPTH, SEQUENCES, XSI_NS
from feeds.edxl_have.reading import Ignored

UNPROCESSABLE = 422


class Invalid(Exception):
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


def split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def text(element: ET.Element) -> str:
    """Text content with XML Schema whitespace collapsed."""
    return " ".join((element.text or "").split())


def qualified(tag: str) -> str:
    ns, local = split(tag)
    return f"{local} ({ns})" if ns else local


def attribute(element: ET.Element, ns: str, name: str) -> str | None:
    value = element.get(f"{{{ns}}}{name}", element.get(name))
    return " ".join(value.split()) if value else None


class Tree:
    """One document being read: its lines, parents, and every problem found (the envelope,
    hospital and beds readers each add theirs)."""

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
            local = split(node.tag)[1]
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
        return Ignored(where=self.path(element), line=self.lines.get(element), element=split(element.tag)[1], value=value, why=why)

    # -- structure ------------------------------------------------------------------------

    def children(self, element: ET.Element) -> dict[str, list[ET.Element]]:
        """The element's HAVE children by name, checked against its schema sequence: names,
        namespace, order and counts; no text between them and no attributes of their own."""
        local = split(element.tag)[1]
        spec = SEQUENCES[local]
        order = {name: i for i, (name, _, _) in enumerate(spec)}
        found: dict[str, list[ET.Element]] = {name: [] for name, _, _ in spec}
        self._no_attributes(element)
        if (element.text or "").strip() or any((child.tail or "").strip() for child in element):
            self.problem(element, f"{local} holds elements, not text")
        last = -1
        for child in element:
            ns, name = split(child.tag)
            if name in order and ns != HAVE_NS:
                self.problem(child, f"{name} is in namespace {ns or '(none)'!r}; EDXL-HAVE 1.0 elements are in {HAVE_NS!r}")
                continue
            if name not in order:
                expected = ", ".join(order)
                self.problem(child, f"{qualified(child.tag)} is not allowed in {local}; EDXL-HAVE 1.0 allows {expected}")
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
            if split(attribute)[0] != XSI_NS:
                self.problem(element, f"attribute {qualified(attribute)} is not allowed on {split(element.tag)[1]}")

    def check_values(self, hospital: ET.Element) -> None:
        """Enumerations exact (case-sensitive) and integers whole and non-negative, wherever they
        occur in the hospital, also in parts we do not apply."""
        for element in hospital.iter():
            ns, local = split(element.tag)
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
        value = text(element)
        local = split(element.tag)[1]
        if not re.fullmatch(r"[+-]?[0-9]+", value):
            self.problem(element, f"{local} must be a whole number, got {value[:40]!r}")
            return None
        number = int(value)
        if not 0 <= number <= MAX_COUNT:
            self.problem(element, f"{local} must lie between 0 and {MAX_COUNT}, got {number}")
            return None
        return number


def parse(body: bytes) -> tuple[ET.Element, dict[ET.Element, int]]:
    """Parse through defusedxml only: a DTD, entity or external reference is refused."""
    builder = _LineBuilder()
    parser = XMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.expat = parser.parser

    def refused(msg: str, line: int | None = None) -> DocumentRejected:
        line = line if line is not None else builder.expat.CurrentLineNumber
        return DocumentRejected(UNPROCESSABLE, [Problem(where="document", line=line, msg=msg)])

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
