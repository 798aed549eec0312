"""The worker's parts as typed dependencies: a route names what it needs (`redis: RedisDep`).

The app keeps every part in one container, `capacity.worker.Services`, put on it by `install`
and read here only, so no route reaches into the untyped `app.state`. Each dependency reads
that container (FastAPI resolves it once per request); a route that needs many parts, or a hot
one, takes `ServicesDep` itself: one dependency to resolve rather than one per part.
"""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from capacity.auth.audit import FailureAudit
from capacity.auth.ratelimit import SocketSlots
from capacity.auth.service import Authenticator
from capacity.board.service import BoardCache
from capacity.config import Settings
from capacity.coverage.service import CoverageService
from capacity.db import Database
from capacity.dispatch.capabilities import CapabilityBook
from capacity.facilities.service import RegistrySync
from capacity.history.log import EventLog
from capacity.interop.identifiers import IdentifierBook
from capacity.live.hub import Hub
from capacity.live.replica import Replica
from capacity.reports.applier import Applier
from capacity.worker import Services
from regions.geo import RegionLocator
from regions.registry import Registry
from regions.travel import TravelModel


def install(app: FastAPI, services: Services) -> None:
    """Keep the worker's parts on the app: the one place that writes `app.state`."""
    app.state.services = services


def services_of(conn: HTTPConnection) -> Services:
    """The worker's parts, for the code that has the connection rather than a dependency (the
    route rules of capacity.auth.deps: one flat dependency each, not a tree)."""
    services: Services = conn.app.state.services
    return services


async def get_services(conn: HTTPConnection) -> Services:
    return services_of(conn)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_redis(services: ServicesDep) -> aioredis.Redis:
    return services.redis


async def get_db(services: ServicesDep) -> Database:
    return services.db


async def get_registry(services: ServicesDep) -> Registry:
    return services.registry


async def get_registry_sync(services: ServicesDep) -> RegistrySync:
    return services.registry_sync


async def get_locator(services: ServicesDep) -> RegionLocator:
    return services.locator


async def get_replica(services: ServicesDep) -> Replica:
    return services.replica


async def get_hub(services: ServicesDep) -> Hub:
    return services.hub


async def get_boards(services: ServicesDep) -> BoardCache:
    return services.boards


async def get_applier(services: ServicesDep) -> Applier:
    return services.applier


async def get_record(services: ServicesDep) -> EventLog | None:
    """The SQL event log; None unless durability is `sql`."""
    return services.record


async def get_authenticator(services: ServicesDep) -> Authenticator:
    return services.authenticator


async def get_failure_audit(services: ServicesDep) -> FailureAudit:
    return services.failure_audit


async def get_socket_slots(services: ServicesDep) -> SocketSlots:
    return services.socket_slots


async def get_travel(services: ServicesDep) -> TravelModel:
    return services.travel


async def get_capabilities(services: ServicesDep) -> CapabilityBook:
    return services.capabilities


async def get_identifiers(services: ServicesDep) -> IdentifierBook:
    return services.identifiers


async def get_coverage(services: ServicesDep) -> CoverageService:
    return services.coverage


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
DatabaseDep = Annotated[Database, Depends(get_db)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
RegistrySyncDep = Annotated[RegistrySync, Depends(get_registry_sync)]
LocatorDep = Annotated[RegionLocator, Depends(get_locator)]
ReplicaDep = Annotated[Replica, Depends(get_replica)]
HubDep = Annotated[Hub, Depends(get_hub)]
BoardsDep = Annotated[BoardCache, Depends(get_boards)]
ApplierDep = Annotated[Applier, Depends(get_applier)]
RecordDep = Annotated[EventLog | None, Depends(get_record)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
FailureAuditDep = Annotated[FailureAudit, Depends(get_failure_audit)]
SocketSlotsDep = Annotated[SocketSlots, Depends(get_socket_slots)]
TravelDep = Annotated[TravelModel, Depends(get_travel)]
CapabilitiesDep = Annotated[CapabilityBook, Depends(get_capabilities)]
IdentifiersDep = Annotated[IdentifierBook, Depends(get_identifiers)]
CoverageDep = Annotated[CoverageService, Depends(get_coverage)]
