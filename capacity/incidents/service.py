"""An incident's proposal: every SEH of every region as the planner sees it now, the plan, the record.

The receiving hospitals are read as dispatch's nearest reads them (capacity.dispatch.service):
from this worker's replica once it has caught up with every region, free places net of the
places announcements hold, the effective capabilities and the capability stops, and the travel
model's minutes from the incident to every SEH at once. Crossing region borders is the point of
a plan, so every region is read, whatever the key's regions.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy import func, select

from capacity.board.service import aged, free_of, held_for
from capacity.db import Database
from capacity.dispatch.service import Places, places_of
from capacity.domain import UnitType
from capacity.history.models import AuditEntry
from capacity.incidents.models import (
    Casualties,
    Incident,
    IncidentLineRecord,
    IncidentRecord,
    IncidentRequest,
    IncidentSummary,
    Location,
    Needs,
    PlanLineView,
)
from capacity.incidents.planner import Casualties as Counts
from capacity.incidents.planner import Plan, Receiving, plan_incident
from capacity.live.replica import Replica
from capacity.state import FacilityLive
from regions.registry import Facility, Registry
from regions.travel import DETOUR_FACTOR, TravelModel, banded_minutes_array, distance_km, minutes_with_fallback

SEH_PLACES = UnitType.seh_places.value
IC_ADULT = UnitType.ic_adult.value
ID_PREFIX = "inc-"

_sehs: WeakKeyDictionary[Places, np.ndarray] = WeakKeyDictionary()


def _seh_indexes(places: Places) -> np.ndarray:
    """Indexes of the facilities with an SEH (kept per registry revision, as places_of keeps the arrays)."""
    found = _sehs.get(places)
    if found is None:
        found = _sehs[places] = np.flatnonzero(np.array([f.has_seh for f in places.facilities], dtype=bool))
    return found


def _free(live: FacilityLive, unit_type: str) -> int | None:
    """Free places of the unit net of holds; None when never reported or unknown."""
    figures = live.units.get(unit_type)
    return None if figures is None else free_of(figures, held_for(live, unit_type))


def receiving_of(*, facility: Facility, live: FacilityLive, capabilities: frozenset[str], travel_min: float) -> Receiving:
    """One hospital as the planner sees it: its SEH status, free places net of holds, capabilities."""
    return Receiving(
        facility_id=facility.id,
        name=facility.name,
        region_id=facility.region_id,
        travel_min=travel_min,
        seh_status=live.seh.status.value if live.seh is not None else None,
        seh_free=_free(live, SEH_PLACES),
        ic_free=_free(live, IC_ADULT),
        capabilities=capabilities,
        capability_stops=frozenset(stop.capability.value for stop in live.capability_stops or ()),
    )


async def receiving(
    *, replica: Replica, registry: Registry, travel: TravelModel, capabilities: Mapping[str, frozenset[str]], lat: float, lon: float
) -> list[Receiving]:
    """Every SEH of every region, with the travel model's minutes from (lat, lon); a road-aware
    model is asked for all of them at once (its times can reorder them), the geodesic one otherwise."""
    regions = list(registry.regions)
    await replica.all_caught_up(regions)
    live = {r: replica.region(r) for r in regions}
    places = places_of(registry)
    indexes = _seh_indexes(places)
    km = distance_km(lat, lon, places.lat[indexes], places.lon[indexes])
    minutes: list[float] = banded_minutes_array(km * DETOUR_FACTOR).tolist()
    chosen = [places.facilities[i] for i in indexes.tolist()]
    if travel.road_aware and chosen:
        minutes, _model = await minutes_with_fallback(travel, (lat, lon), [(f.lat, f.lon) for f in chosen])
    return [
        receiving_of(
            facility=facility,
            live=live[facility.region_id].facility(facility.id),
            capabilities=capabilities.get(facility.id, frozenset()),
            travel_min=minute,
        )
        for facility, minute in zip(chosen, minutes, strict=True)
    ]


def _line_view(line: IncidentLineRecord) -> PlanLineView:
    return PlanLineView(
        facility_id=line.facility_id,
        name=line.name,
        region_id=line.region_id,
        T1=line.T1,
        T2=line.T2,
        T3=line.T3,
        burns=line.burns,
        paediatric=line.paediatric,
        travel_min=line.travel_min,
        within_norm=line.within_norm,
        why=list(line.why),
    )


def _incident_view(record: IncidentRecord, lines: Sequence[IncidentLineRecord]) -> Incident:
    return Incident(
        id=record.id,
        state="proposed",
        created_at=record.created_at,
        location=Location(lat=record.lat, lon=record.lon, municipality=record.municipality),
        casualties=Casualties.model_validate(record.casualties),
        needs=Needs.model_validate(record.needs),
        plan=[_line_view(line) for line in sorted(lines, key=lambda line: line.position)],
        unplaced={k: int(v) for k, v in record.unplaced.items()},
        unplaced_needs={k: int(v) for k, v in record.unplaced_needs.items()},
        rules=record.rules,
    )


def _records(*, plan: Plan, request: IncidentRequest, key_id: str, now: datetime) -> tuple[IncidentRecord, list[IncidentLineRecord]]:
    lat, lon, municipality = request.point()
    incident_id = ID_PREFIX + secrets.token_hex(8)
    record = IncidentRecord(
        id=incident_id,
        created_at=now,
        created_by=key_id,
        state="proposed",
        lat=lat,
        lon=lon,
        municipality=municipality,
        casualties=request.casualties.model_dump(),
        needs=request.needs.model_dump(),
        unplaced=dict(plan.unplaced),
        unplaced_needs=dict(plan.unplaced_needs),
        rules=plan.rules,
    )
    lines = [
        IncidentLineRecord(
            incident_id=incident_id,
            facility_id=line.facility_id,
            position=position,
            name=line.name,
            region_id=line.region_id,
            T1=line.T1,
            T2=line.T2,
            T3=line.T3,
            burns=line.burns,
            paediatric=line.paediatric,
            travel_min=round(line.travel_min, 1),
            within_norm=line.within_norm,
            why=list(line.why),
        )
        for position, line in enumerate(plan.lines)
    ]
    return record, lines


def with_stale_said(*, plan: Plan, replica: Replica, registry: Registry, now: datetime) -> Plan:
    """Never stale without saying so: a line planned on a status or figures older than the
    hospital's reporting interval says how old they are, so dispatch confirms by phone."""
    lines = []
    for line in plan.lines:
        facility = registry.facilities[line.facility_id]
        live = replica.region(facility.region_id).facility(facility.id)
        dated = [("SEH status", live.seh.measured_at if live.seh else None)]
        dated += [(unit, figures.measured_at) for unit in (SEH_PLACES, IC_ADULT) if (figures := live.units.get(unit)) is not None]
        old = []
        for what, at in dated:
            if at is not None:
                age, stale = aged(facility, at, now)
                if stale:
                    old.append(f"{what} {age // 60} min old")
        lines.append(replace(line, why=(*line.why, f"stale, confirm by phone: {', '.join(old)}")) if old else line)
    return replace(plan, lines=tuple(lines))


async def propose(
    *,
    db: Database,
    replica: Replica,
    registry: Registry,
    travel: TravelModel,
    capabilities: Mapping[str, frozenset[str]],
    request: IncidentRequest,
    key_id: str,
    actor: str,
    now: datetime | None = None,
) -> Incident:
    """Plan the incident on the live state and record the proposal with who made it; nothing is held."""
    now = now or datetime.now(UTC)
    lat, lon, _ = request.point()
    hospitals = await receiving(replica=replica, registry=registry, travel=travel, capabilities=capabilities, lat=lat, lon=lon)
    counts = Counts(**request.casualties.model_dump(), **request.needs.model_dump())
    plan = with_stale_said(plan=plan_incident(receiving=hospitals, casualties=counts), replica=replica, registry=registry, now=now)
    record, lines = _records(plan=plan, request=request, key_id=key_id, now=now)
    placed = sum(line.T1 + line.T2 + line.T3 for line in lines)
    async with db.session() as session:
        session.add(record)
        await session.flush()  # the incident before its lines (their foreign key)
        session.add_all(lines)
        session.add(
            AuditEntry(
                at=now,
                key_id=key_id,
                actor=actor,
                action="incident.propose",
                target=record.id,
                detail={"casualties": record.casualties, "needs": record.needs, "placed": placed, "hospitals": len(lines)},
            )
        )
        await session.commit()
    return _incident_view(record, lines)


async def get_incident(*, db: Database, incident_id: str) -> Incident | None:
    async with db.session() as session:
        record = await session.get(IncidentRecord, incident_id)
        if record is None:
            return None
        lines = (await session.scalars(select(IncidentLineRecord).where(IncidentLineRecord.incident_id == incident_id))).all()
    return _incident_view(record, lines)


async def list_incidents(*, db: Database, limit: int) -> list[IncidentSummary]:
    """The newest incidents first, each with its totals (placed from its lines, in one query)."""
    placed = (
        select(
            IncidentLineRecord.incident_id,
            func.sum(IncidentLineRecord.T1 + IncidentLineRecord.T2 + IncidentLineRecord.T3).label("placed"),
            func.count().label("hospitals"),
        )
        .group_by(IncidentLineRecord.incident_id)
        .subquery()
    )
    query = (
        select(IncidentRecord, placed.c.placed, placed.c.hospitals)
        .join(placed, placed.c.incident_id == IncidentRecord.id, isouter=True)
        .order_by(IncidentRecord.created_at.desc(), IncidentRecord.id)
        .limit(limit)
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    summaries = []
    for record, placed_count, hospitals in rows:
        casualties = Casualties.model_validate(record.casualties)
        summaries.append(
            IncidentSummary(
                id=record.id,
                state="proposed",
                created_at=record.created_at,
                location=Location(lat=record.lat, lon=record.lon, municipality=record.municipality),
                casualties=casualties,
                needs=Needs.model_validate(record.needs),
                total=casualties.total,
                placed=int(placed_count or 0),
                unplaced=sum(int(v) for v in record.unplaced.values()),
                hospitals=int(hospitals or 0),
            )
        )
    return summaries
