from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from capacity.auth.deps import CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["keys"])


class WhoAmI(BaseModel):
    key_id: str
    label: str
    role: str
    facility_id: str | None
    regions: list[str] | None


@router.get("/keys/me")
async def who_am_i(who: CurrentPrincipal) -> WhoAmI:
    """What the presented key is: its id, label, role and scope (never the secret)."""
    return WhoAmI(
        key_id=who.key_id,
        label=who.label,
        role=who.role.value,
        facility_id=who.facility_id,
        regions=sorted(who.region_ids) if who.region_ids is not None else None,
    )
