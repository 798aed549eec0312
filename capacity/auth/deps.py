"""Route rules as dependencies: who may write a facility, who may read a region."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status

from capacity.auth.models import Principal
from regions.registry import Facility, Region


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def principal(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("missing Authorization: Bearer <key>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization must be 'Bearer <key>'")
    found = await request.app.state.authenticator.authenticate(token.strip())
    if found is None:
        raise _unauthorized("unknown or revoked key")
    return found


CurrentPrincipal = Annotated[Principal, Depends(principal)]


def known_facility(request: Request, facility_id: Annotated[str, Path(max_length=64)]) -> Facility:
    facility = request.app.state.registry.facilities.get(facility_id)
    if facility is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown facility {facility_id!r}")
    return facility


def known_region(request: Request, region_id: Annotated[str, Path(max_length=16)]) -> Region:
    region = request.app.state.registry.regions.get(region_id)
    if region is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown region {region_id!r}")
    return region


def facility_writer(who: CurrentPrincipal, facility: Annotated[Facility, Depends(known_facility)]) -> Principal:
    """Only the facility's own key may write its reports."""
    if not who.may_write(facility.id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this key may not write facility {facility.id!r}")
    return who


def region_reader(who: CurrentPrincipal, region: Annotated[Region, Depends(known_region)]) -> Principal:
    if not who.may_read(region.id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this key may not read region {region.id!r}")
    return who


def facility_reader(who: CurrentPrincipal, facility: Annotated[Facility, Depends(known_facility)]) -> Principal:
    if not who.may_read(facility.region_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this key may not read facility {facility.id!r}")
    return who
