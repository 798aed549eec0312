"""Opening hours passing: an SEH with declared hours (regions.hours) is closed, with the reason
`opening_hours`, when its hours end, and opened again when they begin.

Each transition is a system event on the region's stream, made exactly once whatever the number
of workers, the way a stop's expiry is (capacity.reports.timers): a system report that applies
only while the SEH status it replaces is still the stored one (apply.lua's compare-and-set), so
two workers seeing a transition due at once make one event. Each worker finds what is due in its
replica, so a region without hours costs nothing.

A hospital's own report takes precedence, as a stop does: the closing applies only while the SEH
status was said before the closing time (a hospital that reports `open` at night stays open until
its next transition), and the opening only undoes a closure the hours made (a stop sent during the
night is kept in the morning).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from capacity import metrics
from capacity.domain import OPENING_HOURS, SehStatus
from capacity.errors import LiveStateRebuilding
from capacity.live.replica import RegionLive
from capacity.reports.applier import Applier
from capacity.reports.models import SehReport
from capacity.reports.service import apply_system_seh
from capacity.state import FacilityLive, SehFigure
from regions.hours import LOOK_BACK
from regions.registry import Facility, Registry

log = logging.getLogger(__name__)


def closed_by_hours(seh: SehFigure | None) -> bool:
    return seh is not None and seh.closed_by_hours


@dataclass(frozen=True, slots=True)
class Transition:
    """What the hours say must happen now: the SEH closes (until the hours begin again) or opens."""

    status: SehStatus
    since: datetime
    until: datetime | None = None


def due(facility: Facility, live: FacilityLive, now: datetime) -> Transition | None:
    """The transition due for this facility now, if any."""
    seh = live.seh
    if not facility.has_seh or (facility.hours is None and not closed_by_hours(seh)):
        return None
    if facility.open_by_hours(now):
        if not closed_by_hours(seh):
            return None
        began = facility.hours.last_change(now) if facility.hours is not None else None
        return Transition(SehStatus.open, since=began or now)
    if closed_by_hours(seh):
        return None
    assert facility.hours is not None
    began = facility.hours.last_change(now) or now - LOOK_BACK
    if seh is not None and seh.measured_at >= began:
        return None  # the hospital said its status after the closing time: its word stands until the next transition
    return Transition(SehStatus.closed, since=began, until=facility.hours.next_change(now))


def transitions_due(region: RegionLive, registry: Registry, now: datetime) -> list[tuple[Facility, FacilityLive, Transition]]:
    """Every transition due in the region: SEHs with hours, and closures by hours whose hours went."""
    watched = {f.id for f in registry.by_region.get(region.region_id, ()) if f.hours is not None}
    watched |= {facility_id for facility_id, live in region.facilities.items() if closed_by_hours(live.seh)}
    found = []
    for facility_id in sorted(watched):
        facility, live = registry.facilities.get(facility_id), region.facility(facility_id)
        if facility is None:
            continue
        try:
            transition = due(facility, live, now)
        except Exception:  # one facility's hours must not hold up the region's others
            log.exception("opening hours of %s could not be evaluated; skipped", facility_id)
            metrics.JOB_FAILURES.labels(job="opening-hours", region=region.region_id).inc()
            continue
        if transition is not None:
            found.append((facility, live, transition))
    return found


async def follow_hours(
    *,
    region: RegionLive,
    applier: Applier,
    registry: Registry,
    stream_maxlen: int,
    now: datetime | None = None,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Close or open every SEH of the region whose hours changed since its status was said; returns
    how many this call changed (0 when another worker, or the hospital, came first).

    `refresh` brings the registry up to date before anything is done: hours declared on another
    worker reach this one within a second, and in that second this worker must not undo what
    the other did by the hours it knew before."""
    now = now or datetime.now(UTC)
    changed = 0
    pending = transitions_due(region, registry, now)
    if pending and refresh is not None:
        try:
            await refresh()
        except Exception as exc:  # the database down: act on the hours this worker knows rather than not at all
            log.warning("registry not refreshed before the opening-hours transitions (%s); going on with what is known", exc)
        pending = transitions_due(region, registry, now)
    for facility, live, transition in pending:
        closing = transition.status is SehStatus.closed
        seh = SehReport.model_construct(
            status=transition.status.value,
            reason=OPENING_HOURS if closing else None,
            reason_text=None,
            expected_until=transition.until if closing else None,
        )
        try:
            applied = await apply_system_seh(
                applier=applier, facility=facility, live=live, seh=seh, at=transition.since, stream_maxlen=stream_maxlen
            )
        except LiveStateRebuilding:
            return changed
        if not applied:
            continue  # another worker or the hospital came first
        changed += 1
        metrics.HOURS_TRANSITIONS.labels(region=facility.region_id, to=transition.status.value).inc()
        log.info("SEH of %s %s by its opening hours (since %s)", facility.id, "closed" if closing else "opened", transition.since)
    return changed
