"""What readers see of the live state: every figure with its age and whether it is stale.

Views are built from this worker's replica (capacity.live.replica), never from Redis. A
region's board is the same for every reader in the same second while nothing changes, so
its JSON is kept until the region changes or the second passes: a thousand dashboards
opening at once cost one board.
"""

from __future__ import annotations

from datetime import UTC, datetime

from capacity.board.models import (
    CapabilityStopView,
    FacilityState,
    Incoming,
    NedocsView,
    RegionBoard,
    RegionSummary,
    SehView,
    UnitView,
    WaitingView,
)
from capacity.domain import UnitType, nedocs_band
from capacity.facilities.public import public_fields
from capacity.live.replica import RegionLive
from capacity.state import FacilityLive, UnitFigures
from regions.registry import Facility, Region, Registry

UNIT_ORDER = {t.value: i for i, t in enumerate(UnitType)}


def aged(facility: Facility, measured_at: datetime, now: datetime) -> tuple[int, bool]:
    """A figure's age in whole seconds and whether that is past the facility's reporting interval."""
    age = max(0, int((now - measured_at).total_seconds()))
    return age, age > facility.reporting_interval_s


def seh_view(facility: Facility, live: FacilityLive, now: datetime) -> SehView | None:
    """The stored SEH status with its age, or None if the facility never reported one."""
    seh = live.seh
    if seh is None:
        return None
    age, stale = aged(facility, seh.measured_at, now)
    return SehView.model_construct(
        status=seh.status.value,
        reason=seh.reason,
        reason_text=seh.reason_text,
        expected_until=seh.expected_until,
        measured_at=seh.measured_at,
        age_s=age,
        stale=stale,
        incoming=live.held("seh"),
        stop_since=live.stop_since,
    )


def held_for(live: FacilityLive, unit_type: str) -> int:
    """Places of a unit held by announcements (an SEH announcement holds an SEH place)."""
    return live.held(unit_type) + (live.held("seh") if unit_type == UnitType.seh_places.value else 0)


def free_of(figures: UnitFigures, held: int) -> int | None:
    """Available minus held; None (unknown) when available is unknown, never zero."""
    return None if figures.available is None else max(0, figures.available - held)


def unit_view(facility: Facility, live: FacilityLive, unit_type: str, now: datetime) -> UnitView | None:
    """One unit's stored figures with their age, or None if the facility never reported it."""
    figures = live.units.get(unit_type)
    if figures is None:
        return None
    age, stale = aged(facility, figures.measured_at, now)
    held = held_for(live, unit_type)
    return UnitView.model_construct(
        type=UnitType(unit_type),
        staffed=figures.staffed,
        occupied=figures.occupied,
        available=figures.available,
        measured_at=figures.measured_at,
        age_s=age,
        stale=stale,
        held=held,
        free=free_of(figures, held),
    )


def capability_stops_view(live: FacilityLive, now: datetime) -> list[CapabilityStopView]:
    return [
        CapabilityStopView.model_construct(
            capability=stop.capability.value,
            reason=stop.reason,
            reason_text=stop.reason_text,
            expected_until=stop.expected_until,
            expired=stop.expected_until is not None and stop.expected_until <= now,
            measured_at=stop.measured_at,
            age_s=max(0, int((now - stop.measured_at).total_seconds())),
        )
        for stop in live.capability_stops or ()
    ]


def waiting_view(facility: Facility, live: FacilityLive, now: datetime) -> WaitingView | None:
    waiting = live.waiting
    if waiting is None:
        return None
    age, stale = aged(facility, waiting.measured_at, now)
    return WaitingView.model_construct(
        triage_min=waiting.triage_min, doctor_min=waiting.doctor_min, measured_at=waiting.measured_at, age_s=age, stale=stale
    )


def nedocs_view(facility: Facility, live: FacilityLive, now: datetime) -> NedocsView | None:
    nedocs = live.nedocs
    if nedocs is None:
        return None
    age, stale = aged(facility, nedocs.measured_at, now)
    return NedocsView.model_construct(
        score=nedocs.score, band=nedocs_band(nedocs.score), measured_at=nedocs.measured_at, age_s=age, stale=stale
    )


def facility_view(facility: Facility, live: FacilityLive, now: datetime, incoming: list[Incoming] | None = None) -> FacilityState:
    """The reader's view of one facility, ageing every figure against `now`."""
    seh = seh_view(facility, live, now)
    units = [view for name in live.units if (view := unit_view(facility, live, name, now))]
    units.sort(key=lambda u: UNIT_ORDER[u.type.value])
    figures_stale = [f.stale for f in ([seh] if seh else []) + units]
    return FacilityState.model_construct(
        **public_fields(FacilityState, facility, units="offers"),
        seh=seh,
        units=units,
        capability_stops=capability_stops_view(live, now),
        waiting=waiting_view(facility, live, now),
        nedocs=nedocs_view(facility, live, now),
        last_measured_at=live.measured_at,
        last_event_id=live.event_id or None,
        stale=not figures_stale or any(figures_stale),
        incoming=incoming,
    )


def region_summary(region: Region, registry: Registry) -> RegionSummary:
    return RegionSummary(
        id=region.id, name=region.name, lead_trauma_centre=region.lead_trauma_centre, facilities=len(registry.by_region[region.id])
    )


def incoming_for(region: RegionLive, facility: Facility) -> list[Incoming]:
    """The facility's announced patients whose hold is active, soonest first."""
    held = [
        Incoming(id=a.id, need=a.need, eta=a.eta, urgency=a.urgency or "", category=a.category, expires_at=a.expires_at)
        for a in region.announcements.values()
        if a.facility_id == facility.id and a.eta is not None and a.expires_at is not None
    ]
    return sorted(held, key=lambda i: (i.eta, i.id))


def region_board(*, region: RegionLive, registry: Registry, now: datetime | None = None, own_facility: str | None = None) -> RegionBoard:
    """Every facility of the region as of the replica's last event (its id is on the board).

    `own_facility`: the reader's own facility, whose announced patients are shown in full."""
    now = now or datetime.now(UTC)
    own = registry.facilities.get(own_facility or "")
    incoming = incoming_for(region, own) if own is not None and own.region_id == region.region_id else None
    return RegionBoard.model_construct(
        region=region_summary(registry.regions[region.region_id], registry),
        generated_at=now,
        last_event_id=region.last_event_id,
        facilities=[
            facility_view(f, region.facility(f.id), now, incoming if own is not None and f.id == own.id else None)
            for f in registry.by_region[region.region_id]
        ],
    )


def facility_state(*, region: RegionLive, facility: Facility, now: datetime | None = None, own: bool = False) -> FacilityState:
    return facility_view(facility, region.facility(facility.id), now or datetime.now(UTC), incoming_for(region, facility) if own else None)


class BoardCache:
    """Each region's board JSON, kept while the region has not changed and the second has not
    passed (ages are whole seconds); a facility's own board, which shows its announcements,
    is built for it alone."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[int, int, int], bytes]] = {}

    def json(self, *, region: RegionLive, registry: Registry, own_facility: str | None = None) -> bytes:
        now = datetime.now(UTC)
        own = registry.facilities.get(own_facility or "")
        if own is not None and own.region_id == region.region_id:
            return region_board(region=region, registry=registry, now=now, own_facility=own.id).model_dump_json().encode()
        stamp = (region.changes, registry.revision, int(now.timestamp()))
        kept = self._kept.get(region.region_id)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        body = region_board(region=region, registry=registry, now=now).model_dump_json().encode()
        self._kept[region.region_id] = (stamp, body)
        return body
