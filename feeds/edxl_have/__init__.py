"""OASIS EDXL-HAVE 1.0 (Hospital AVailability Exchange) in and out.

In (`read`): a `HospitalStatus` document, bare or inside an EDXL-DE 1.0 `EDXLDistribution`, is
parsed with defusedxml only, checked strictly against the parts of the HAVE 1.0 schema we read,
and turned into one canonical report per `Hospital` (feeds.documents.Parsed). What HAVE says
that we have no field for is kept as ignored, for the core to answer back.

Out (`write`): the live state of a region as a HAVE 1.0 `HospitalStatus` document that validates
against the OASIS schema and, posted back, gives the same figures.

Both use the one mapping table in `codes` (`feeds/EDXL-HAVE.md` shows it for people). The
reader is split by what it reads: `tree` (the XML and the schema sequences), `envelope`
(EDXL-DE), `hospital` (identity, time, SEH status), `beds`.
"""

from feeds.edxl_have.codes import DE_NS, HAVE_NS, XNL_NS, XPIL_NS, xs_datetime
from feeds.edxl_have.read import read_hospital_status
from feeds.edxl_have.reading import HaveDocument, HospitalReading, Ignored, Offload, SchemaUnavailable
from feeds.edxl_have.write import hospital_status_xml

__all__ = [
    "DE_NS",
    "HAVE_NS",
    "XNL_NS",
    "XPIL_NS",
    "HaveDocument",
    "HospitalReading",
    "Ignored",
    "Offload",
    "SchemaUnavailable",
    "hospital_status_xml",
    "read_hospital_status",
    "xs_datetime",
]
