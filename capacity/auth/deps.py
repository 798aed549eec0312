"""Route rules as dependencies: who may write a facility, who may read a region.

Each rule is one flat `async def` dependency that returns what the route needs (the
facility or region together with the caller), rather than a tree of small ones: FastAPI
spends more time resolving a dependency tree than the checks themselves take, and runs a
plain `def` dependency in a thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status

from capacity.auth.models import Principal
from capacity.domain import Role
from regions.registry import Facility, Region

FacilityId = Annotated[str, Path(max_length=64)]
RegionId = Annotated[str, Path(max_length=16)]


@dataclass(frozen=True, slots=True)
class FacilityAccess:
    facility: Facility
    principal: Principal


@dataclass(frozen=True, slots=True)
class RegionAccess:
    region: Region
    principal: Principal


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def _authenticate(request: Request) -> Principal:
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


def _facility(request: Request, facility_id: str) -> Facility:
    facility = request.app.state.registry.facilities.get(facility_id)
    if facility is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown facility {facility_id!r}")
    return facility


def _region(request: Request, region_id: str) -> Region:
    region = request.app.state.registry.regions.get(region_id)
    if region is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown region {region_id!r}")
    return region


async def principal(request: Request) -> Principal:
    """Any valid key (401 otherwise)."""
    return await _authenticate(request)


async def _facility_access(request: Request, facility_id: str, *, write: bool) -> FacilityAccess:
    """404 for an unknown facility, then 401 without a valid key, then 403 out of scope."""
    facility = _facility(request, facility_id)
    who = await _authenticate(request)
    allowed = who.may_write(facility.id) if write else who.may_read(facility.region_id)
    if not allowed:
        verb = "write" if write else "read"
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this key may not {verb} facility {facility.id!r}")
    return FacilityAccess(facility, who)


async def facility_writer(request: Request, facility_id: FacilityId) -> FacilityAccess:
    """Only the facility's own key may write its reports."""
    return await _facility_access(request, facility_id, write=True)


async def facility_reader(request: Request, facility_id: FacilityId) -> FacilityAccess:
    return await _facility_access(request, facility_id, write=False)


async def region_reader(request: Request, region_id: RegionId) -> RegionAccess:
    region = _region(request, region_id)
    who = await _authenticate(request)
    if not who.may_read(region.id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this key may not read region {region.id!r}")
    return RegionAccess(region, who)


CurrentPrincipal = Annotated[Principal, Depends(principal)]
FacilityWriter = Annotated[FacilityAccess, Depends(facility_writer)]
FacilityReader = Annotated[FacilityAccess, Depends(facility_reader)]
RegionReader = Annotated[RegionAccess, Depends(region_reader)]


def _role_in(who: Principal, roles: tuple[Role, ...], what: str) -> Principal:
    if who.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this needs {what}")
    return who


async def dispatcher(request: Request) -> Principal:
    """Dispatch (meldkamer) keys, and admin keys."""
    return _role_in(await _authenticate(request), (Role.dispatch, Role.admin), "a dispatch key")


Dispatcher = Annotated[Principal, Depends(dispatcher)]


async def administrator(request: Request) -> Principal:
    """Admin keys only (audit, keys, facilities)."""
    return _role_in(await _authenticate(request), (Role.admin,), "an admin key")


Administrator = Annotated[Principal, Depends(administrator)]


async def facility_admin(request: Request, facility_id: FacilityId) -> FacilityAccess:
    """Admin keys, on an existing facility (404 first)."""
    facility = _facility(request, facility_id)
    return FacilityAccess(facility, await administrator(request))


FacilityAdmin = Annotated[FacilityAccess, Depends(facility_admin)]
