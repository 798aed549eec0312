"""Route rules as dependencies: each carries one rule of capacity.auth.roles and returns what
the route needs (the facility or region together with the caller).

Each rule is one flat `async def` dependency rather than a tree of small ones: FastAPI
spends more time resolving a dependency tree than the checks themselves take, and runs a
plain `def` dependency in a thread pool. So they read the worker's parts with
`capacity.deps.services_of`, not through dependencies of their own. Every refusal is audited
(capacity.auth.audit), here: `readable_region` is the one check of a region asked for in a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from starlette.requests import HTTPConnection

from capacity.auth import roles
from capacity.auth.models import Principal
from capacity.auth.ratelimit import Charge
from capacity.auth.roles import Rule, declares
from capacity.auth.service import KeyRefused
from capacity.deps import services_of
from capacity.domain import Role
from regions.registry import Facility, Region

FacilityId = Annotated[str, Path(max_length=64)]
RegionId = Annotated[str, Path(max_length=16)]


@dataclass(frozen=True, slots=True)
class FacilityAccess:
    facility: Facility
    principal: Principal
    charge: Charge | None = None
    """The request's rate-limit token still to be taken, by the script that applies the report
    (one round trip for both); None when it was taken here."""


@dataclass(frozen=True, slots=True)
class RegionAccess:
    region: Region
    principal: Principal


def too_many(retry_after_s: int, detail: str) -> HTTPException:
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail=detail, headers={"Retry-After": str(retry_after_s)})


async def audit_refusal(conn: HTTPConnection, reason: str, key_id: str | None = None) -> None:
    """Audit a refused request or websocket (capacity.auth.audit)."""
    where = f"{conn.scope.get('method', 'WS')} {conn.url.path}"
    source = conn.client.host if conn.client else None
    await services_of(conn).failure_audit.refused(reason=reason, key_id=key_id, where=where, source=source)


async def audit_if_forbidden(conn: HTTPConnection, who: Principal, status_code: int) -> None:
    """A document refused because it names a facility the key may not write is audited as out of
    scope, like every other refusal (the document's own answer says which)."""
    if status_code == 403:
        await audit_refusal(conn, "out of scope", who.key_id)


async def _unauthorized(request: Request, reason: str, detail: str, key_id: str | None = None) -> HTTPException:
    await audit_refusal(request, reason, key_id)
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def forbidden(request: Request, who: Principal, detail: str) -> HTTPException:
    await audit_refusal(request, "out of scope", who.key_id)
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


async def _authenticate(request: Request, *, charged: bool = True) -> Principal:
    """401 without a working key, 429 over the key's rate limit (unless the caller takes the
    token itself: `charged=False`)."""
    header = request.headers.get("authorization")
    if not header:
        raise await _unauthorized(request, "no key", "missing Authorization: Bearer <key>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise await _unauthorized(request, "malformed", "Authorization must be 'Bearer <key>'")
    authenticator = services_of(request).authenticator
    try:
        who = await authenticator.authenticate(token.strip())
    except KeyRefused as refused:
        if refused.retry_after_s:
            await audit_refusal(request, refused.reason, refused.key_id)
            raise too_many(refused.retry_after_s, "this key's secret was wrong too often; wait before trying again") from None
        raise await _unauthorized(request, refused.reason, refused.told, refused.key_id) from None
    if charged:
        await _charge(request, who)
    return who


async def _charge(request: Request, who: Principal) -> None:
    if wait := await services_of(request).authenticator.charge(who):
        raise too_many(wait, f"rate limit of this key reached; retry in {wait} s")


async def holder(request: Request, rule: Rule, *, charged: bool = True) -> Principal:
    """The caller's principal if its role passes `rule` (401, 429 or 403 otherwise)."""
    who = await _authenticate(request, charged=charged)
    if not rule.admits(who.role):
        names = ", ".join(sorted(r.value for r in rule.roles or ()))
        raise await forbidden(request, who, f"this needs a key of role {names} (this key: {who.role.value})")
    return who


def _facility(request: Request, facility_id: str) -> Facility:
    facility = services_of(request).registry.facilities.get(facility_id)
    if facility is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown facility {facility_id!r}")
    return facility


def _region(request: Request, region_id: str) -> Region:
    region = services_of(request).registry.regions.get(region_id)
    if region is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown region {region_id!r}")
    return region


@declares(roles.ANY_KEY)
async def principal(request: Request) -> Principal:
    """Any working key; the route limits its answer to the key's regions."""
    return await _authenticate(request)


async def _facility_access(request: Request, facility_id: str, rule: Rule) -> FacilityAccess:
    """404 for an unknown facility, then 401 without a valid key, then 403 out of role or scope."""
    facility = _facility(request, facility_id)
    who = await holder(request, rule)
    allowed = who.may_write(facility.id) if rule is roles.WRITE_FACILITY else who.may_read(facility.region_id)
    if not allowed:
        verb = "write" if rule is roles.WRITE_FACILITY else "read"
        raise await forbidden(request, who, f"this key may not {verb} facility {facility.id!r}")
    return FacilityAccess(facility, who)


@declares(roles.WRITE_FACILITY)
async def facility_writer(request: Request, facility_id: FacilityId) -> FacilityAccess:
    """Only the facility's own key may write its reports. Its rate-limit token is left for the
    apply script to take (`FacilityAccess.charge`): the hot route's one Redis round trip."""
    facility = _facility(request, facility_id)
    who = await holder(request, roles.WRITE_FACILITY, charged=False)
    if not who.may_write(facility.id):
        raise await forbidden(request, who, f"this key may not write facility {facility.id!r}")
    charge = services_of(request).authenticator.charge_in(who, facility.region_id)
    if charge is None:
        await _charge(request, who)
    return FacilityAccess(facility, who, charge)


@declares(roles.SEND_DOCUMENTS)
async def document_sender(request: Request) -> Principal:
    """CSV, EDXL-HAVE and FHIR documents of reports; which facilities a key may send is checked per report."""
    return await holder(request, roles.SEND_DOCUMENTS)


@declares(roles.READ_FACILITY)
async def facility_reader(request: Request, facility_id: FacilityId) -> FacilityAccess:
    return await _facility_access(request, facility_id, roles.READ_FACILITY)


@declares(roles.HISTORY)
async def facility_history_reader(request: Request, facility_id: FacilityId) -> FacilityAccess:
    return await _facility_access(request, facility_id, roles.HISTORY)


@declares(roles.ANNOUNCEMENT_PARTY)
async def incoming_reader(request: Request, facility_id: FacilityId) -> FacilityAccess:
    """Dispatch and admin, and the receiving facility itself."""
    access = await _facility_access(request, facility_id, roles.ANNOUNCEMENT_PARTY)
    who = access.principal
    if who.role is Role.facility and who.facility_id != access.facility.id:
        raise await forbidden(request, who, "only the receiving facility and dispatch see announcements")
    return access


async def _in_scope(request: Request, who: Principal, region: Region) -> Region:
    if not who.may_read(region.id):
        raise await forbidden(request, who, f"this key may not read region {region.id!r}")
    return region


async def _region_access(request: Request, region_id: str, rule: Rule) -> RegionAccess:
    region = _region(request, region_id)
    who = await holder(request, rule)
    return RegionAccess(await _in_scope(request, who, region), who)


async def readable_region(request: Request, who: Principal, region_id: str) -> Region:
    """A region a query asks for: 404 when unknown, 403 (audited) when the key may not read it."""
    return await _in_scope(request, who, _region(request, region_id))


@declares(roles.READ_REGION)
async def region_reader(request: Request, region_id: RegionId) -> RegionAccess:
    return await _region_access(request, region_id, roles.READ_REGION)


@declares(roles.HISTORY)
async def region_history_reader(request: Request, region_id: RegionId) -> RegionAccess:
    return await _region_access(request, region_id, roles.HISTORY)


@declares(roles.COORDINATE)
async def region_coordinator(request: Request, region_id: RegionId) -> RegionAccess:
    """The coordinator's reports and series of a region: coordinators, dispatch and admin."""
    return await _region_access(request, region_id, roles.COORDINATE)


@declares(roles.ANNOUNCE)
async def dispatcher(request: Request) -> Principal:
    """Dispatch (meldkamer) keys, and admin keys."""
    return await holder(request, roles.ANNOUNCE)


@declares(roles.ADMIN)
async def administrator(request: Request) -> Principal:
    """Admin keys only (audit, keys, facilities)."""
    return await holder(request, roles.ADMIN)


@declares(roles.ADMIN)
async def facility_admin(request: Request, facility_id: FacilityId) -> FacilityAccess:
    """Admin keys, on an existing facility (404 first)."""
    facility = _facility(request, facility_id)
    return FacilityAccess(facility, await holder(request, roles.ADMIN))


@declares(roles.ALERTS)
async def alert_subscriber(request: Request) -> Principal:
    return await holder(request, roles.ALERTS)


@declares(roles.PLAN)
async def planner(request: Request) -> Principal:
    """Coverage what-ifs: coordinators, dispatch and admin."""
    return await holder(request, roles.PLAN)


@declares(roles.INCIDENTS)
async def incident_commander(request: Request) -> Principal:
    """Mass-casualty incidents: dispatch, coordinators (whatever their regions) and admin."""
    return await holder(request, roles.INCIDENTS)


CurrentPrincipal = Annotated[Principal, Depends(principal)]
FacilityWriter = Annotated[FacilityAccess, Depends(facility_writer)]
FacilityReader = Annotated[FacilityAccess, Depends(facility_reader)]
FacilityHistoryReader = Annotated[FacilityAccess, Depends(facility_history_reader)]
IncomingReader = Annotated[FacilityAccess, Depends(incoming_reader)]
RegionReader = Annotated[RegionAccess, Depends(region_reader)]
RegionHistoryReader = Annotated[RegionAccess, Depends(region_history_reader)]
RegionCoordinator = Annotated[RegionAccess, Depends(region_coordinator)]
DocumentSender = Annotated[Principal, Depends(document_sender)]
Dispatcher = Annotated[Principal, Depends(dispatcher)]
Administrator = Annotated[Principal, Depends(administrator)]
FacilityAdmin = Annotated[FacilityAccess, Depends(facility_admin)]
AlertSubscriber = Annotated[Principal, Depends(alert_subscriber)]
Planner = Annotated[Principal, Depends(planner)]
IncidentCommander = Annotated[Principal, Depends(incident_commander)]
PUBLIC = [Depends(roles.public)]
"""`dependencies=PUBLIC` on a route: it declares that it needs no key."""
