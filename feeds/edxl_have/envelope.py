"""Where the HospitalStatus is: the root itself, or embedded in an EDXL-DE 1.0 distribution
(also inside the UICDS `EdxlDeRequest` wrapper real senders use)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from feeds.edxl_have.codes import DE_NS, DISTRIBUTION_TYPES, HAVE_2_NS, HAVE_NS, UICDS_NS
from feeds.edxl_have.reading import Ignored
from feeds.edxl_have.tree import Invalid, Tree, qualified, split, text


def statuses(*, tree: Tree) -> tuple[list[ET.Element], list[Ignored], list[str]]:
    """The HospitalStatus elements: the root itself, or those an EDXL-DE distribution embeds."""
    root = tree.root
    ns, local = split(root.tag)
    if (ns, local) == (UICDS_NS, "EdxlDeRequest"):
        inner = [c for c in root if split(c.tag)[1] == "EDXLDistribution"]
        if len(inner) != 1:
            tree.problem(root, "EdxlDeRequest must wrap exactly one EDXL-DE EDXLDistribution")
            raise Invalid()
        root, (ns, local) = inner[0], split(inner[0].tag)
    if local == "HospitalStatus":
        if ns != HAVE_NS:
            _wrong_have_namespace(tree, root, ns)
            raise Invalid()
        return [root], [], []
    if local == "EDXLDistribution":
        if ns != DE_NS:
            tree.problem(root, f"EDXLDistribution is in namespace {ns or '(none)'!r}; EDXL-DE 1.0 is {DE_NS!r}")
            raise Invalid()
        return _distribution(tree, root)
    tree.problem(
        root,
        f"expected an EDXL-HAVE 1.0 HospitalStatus ({HAVE_NS}), bare or in an EDXL-DE 1.0 EDXLDistribution; got {qualified(root.tag)}",
    )
    raise Invalid()


def _wrong_have_namespace(tree: Tree, element: ET.Element, ns: str) -> None:
    version = " (EDXL-HAVE 2.0 is not read here)" if ns.casefold() == HAVE_2_NS else ""
    tree.problem(
        element,
        f"HospitalStatus is in namespace {ns or '(none)'!r}{version}; expected EDXL-HAVE 1.0: {HAVE_NS!r} (namespaces are case-sensitive)",
    )


def _distribution(tree: Tree, distribution: ET.Element) -> tuple[list[ET.Element], list[Ignored], list[str]]:
    statuses: list[ET.Element] = []
    ignored: list[Ignored] = []
    notes: list[str] = []
    for name in ("distributionType", "distributionStatus"):
        found = distribution.find(f"{{{DE_NS}}}{name}")
        if found is None:
            tree.problem(distribution, f"EDXLDistribution needs a {name}")
        elif name == "distributionType" and text(found) not in DISTRIBUTION_TYPES:
            only = " or ".join(DISTRIBUTION_TYPES)
            tree.problem(found, f"distributionType {text(found)!r} is not a status report; only {only} is applied")
        elif name == "distributionStatus" and text(found) != "Actual":
            status = text(found)
            tree.problem(
                found,
                f"distributionStatus {status!r}: only an Actual message changes live figures (a test never sends ambulances elsewhere)",
            )
    for content in distribution.findall(f"{{{DE_NS}}}contentObject"):
        for other in content.findall(f"{{{DE_NS}}}nonXMLContent"):
            ignored.append(tree.ignored(other, "not an embedded EDXL-HAVE HospitalStatus"))
        for embedded in content.findall(f"{{{DE_NS}}}xmlContent/{{{DE_NS}}}embeddedXMLContent"):
            for item in embedded:
                item_ns, item_local = split(item.tag)
                if item_local == "HospitalStatus" and item_ns == HAVE_NS:
                    statuses.append(item)
                elif item_local == "HospitalStatus":
                    _wrong_have_namespace(tree, item, item_ns)
                else:
                    ignored.append(tree.ignored(item, "not an EDXL-HAVE 1.0 HospitalStatus"))
    if not statuses and not tree.problems:
        tree.problem(distribution, f"the distribution embeds no EDXL-HAVE 1.0 HospitalStatus ({HAVE_NS})")
    return statuses, ignored, notes


# -- one hospital -----------------------------------------------------------------------
