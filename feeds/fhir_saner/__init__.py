"""HL7 FHIR R4 SANER MeasureReports in and out: bed capacity the way public-health reporting sends it.

In (`read`, `beds`): a MeasureReport, or a Bundle of them, becomes one `Parsed` item per report,
which the core (`capacity.interop.service.apply_document`) resolves, checks and applies whole or
not at all; `answer` says what became of it as FHIR JSON.
Out (`write`): a facility's live unit figures as a SANER MeasureReport, a region's as a Bundle.

Every SANER bed code we know is in ONE table, `codes.BED_CODES`; the output uses the same table.
`feeds/FHIR-SANER.md` documents the mapping for people.
"""

from feeds.fhir_saner.answer import accepted_answer, rejected_answer
from feeds.fhir_saner.codes import BED_CODES, EVENT_SYSTEM, UNIT_SYSTEM
from feeds.fhir_saner.read import read_body, read_measure_report, read_resource
from feeds.fhir_saner.reading import FhirDocument, FhirItem, FhirRejected, Ignored
from feeds.fhir_saner.write import fhir_identifier, measure_report, region_bundle, subject_facility_id

__all__ = [
    "BED_CODES",
    "EVENT_SYSTEM",
    "UNIT_SYSTEM",
    "FhirDocument",
    "FhirItem",
    "FhirRejected",
    "Ignored",
    "accepted_answer",
    "fhir_identifier",
    "measure_report",
    "read_body",
    "read_measure_report",
    "read_resource",
    "region_bundle",
    "rejected_answer",
    "subject_facility_id",
]
