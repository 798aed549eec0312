from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from capacity.auth.deps import facility_writer, known_facility
from capacity.auth.models import Principal
from capacity.reports.models import Report, ReportResult
from capacity.reports.service import ReportRefused, apply_report
from regions.registry import Facility

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.post(
    "/facilities/{facility_id}/reports",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ReportResult, "description": "The same report was applied before; nothing new applied"},
        409: {"description": "Older than (or conflicting with) the stored report; nothing applied"},
    },
)
async def push_report(
    report: Report,
    request: Request,
    response: Response,
    facility: Annotated[Facility, Depends(known_facility)],
    who: Annotated[Principal, Depends(facility_writer)],
) -> ReportResult:
    """Apply a facility's SEH status and/or unit counts. Answers with the event id."""
    try:
        result = await apply_report(
            applier=request.app.state.applier,
            facility=facility,
            report=report,
            key_id=who.key_id,
            stream_maxlen=request.app.state.settings.stream_maxlen,
        )
    except ReportRefused as refused:
        return JSONResponse(
            status_code=status.HTTP_409_CONFLICT,
            content={
                "detail": str(refused),
                "stored_measured_at": refused.stored_measured_at.isoformat(),
                "stored_event_id": refused.event_id,
            },
        )
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return result
