from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from capacity.auth.deps import FacilityWriter, too_many
from capacity.deps import ServicesDep
from capacity.reports.models import Report, ReportResult
from capacity.reports.service import ReportLimited, ReportRefused, apply_report

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.post(
    "/facilities/{facility_id}/reports",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportResult,
    responses={
        200: {"model": ReportResult, "description": "The same report was applied before; nothing new applied"},
        409: {"description": "Older than (or conflicting with) the stored report; nothing applied"},
    },
)
async def push_report(
    report: Report,
    writer: FacilityWriter,
    services: ServicesDep,
) -> Response:
    """Apply a facility's SEH status and/or unit counts. Answers with the event id.

    The answer is serialised here in one step (the model is declared for the docs) since
    this is the hottest route: FastAPI would validate the result again before dumping it (and
    it takes the one `services` dependency rather than one per part).
    """
    try:
        result = await apply_report(
            applier=services.applier,
            facility=writer.facility,
            report=report,
            key_id=writer.principal.key_id,
            stream_maxlen=services.settings.stream_maxlen,
            record=services.record,
            charge=writer.charge,
        )
    except ReportLimited as limited:
        raise too_many(limited.retry_after_s, str(limited)) from None
    except ReportRefused as refused:
        return JSONResponse(
            status_code=status.HTTP_409_CONFLICT,
            content={
                "detail": str(refused),
                "stored_measured_at": refused.stored_measured_at.isoformat(),
                "stored_event_id": refused.event_id,
            },
        )
    return Response(
        result.model_dump_json(),
        status_code=status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED,
        media_type="application/json",
    )
