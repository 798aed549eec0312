"""Mass-casualty incidents over HTTP: propose a plan, list the incidents, read one."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from capacity.auth.deps import IncidentCommander
from capacity.deps import DatabaseDep, ServicesDep
from capacity.incidents.models import Incident, IncidentRequest, IncidentSummary
from capacity.incidents.service import get_incident, list_incidents, propose

router = APIRouter(prefix="/api/v1", tags=["incidents"])
INCIDENT_ID = re.compile(r"^inc-[0-9a-f]{16}$")


@router.post("/incidents", status_code=status.HTTP_201_CREATED)
async def post_incident(who: IncidentCommander, body: IncidentRequest, services: ServicesDep) -> Incident:
    """Propose a plan that spreads the casualties over the SEHs that can take them now, across region
    borders; recorded with the key that asked. Nothing is held yet. Counts only: any other field is refused."""
    return await propose(
        db=services.db,
        replica=services.replica,
        registry=services.registry,
        travel=services.travel,
        capabilities=services.capabilities.current(),
        request=body,
        key_id=who.key_id,
        actor=who.label,
    )


@router.get("/incidents")
async def get_incidents(_who: IncidentCommander, db: DatabaseDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[IncidentSummary]:
    """The newest incidents first, with their state and totals."""
    return await list_incidents(db=db, limit=limit)


@router.get("/incidents/{incident_id}")
async def get_one_incident(_who: IncidentCommander, incident_id: Annotated[str, Path(max_length=40)], db: DatabaseDep) -> Incident:
    """One incident with its plan."""
    found = await get_incident(db=db, incident_id=incident_id) if INCIDENT_ID.match(incident_id) else None
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown incident {incident_id[:40]!r}")
    return found
