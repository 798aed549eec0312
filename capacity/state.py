"""The live state of one facility as typed values, and how one event changes it.

The same state lives in three places: a hash in Redis (written only by `apply.lua`), the
SQL record (kept with every event) and the replica in each worker. `fold` is the Python twin
of `apply.lua`: the replica and the backstop use it, and a test holds the replica against
Redis after a thousand random reports, so the three cannot drift apart unnoticed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from types import MappingProxyType
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from capacity.domain import OPENING_HOURS, Capability, SehStatus, UnitType, on_stop, utc_iso

SYSTEM_KEY = "system"
"""The key id of reports the service makes itself (a stop's expiry): not the facility speaking."""

NO_SEH = "-"
"""The SEH version (SehFigure.version) of a facility that never reported an SEH status, as apply.lua
compares it."""

EMPTY: Mapping[str, Any] = MappingProxyType({})
OPTIONAL_PARTS = ("capability_stops", "waiting", "nedocs")
"""Parts of an event present only when the report carried them (older events have none)."""


def digest_of(event: Mapping[str, Any]) -> str:
    """Identifies a report's content (not who sent it), to tell a retry from a conflicting report."""
    content = {k: event[k] for k in ("measured_at", "seh", "units", *OPTIONAL_PARTS) if k in event}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _in_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_in_utc)]
"""A time as UTC with the standard library's own time zone: ages are computed on every read, and
subtracting times in pydantic's parsed zone calls back into Python each time."""


class _Figure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SehFigure(_Figure):
    status: SehStatus
    reason: str | None = None
    reason_text: str | None = None
    expected_until: UtcTime | None = None
    measured_at: UtcTime

    @property
    def version(self) -> str:
        """What a system report expects to replace: the stored status and when it was measured."""
        return f"{self.status.value}|{utc_iso(self.measured_at)}"

    @property
    def closed_by_hours(self) -> bool:
        """A closure the service made from the SEH's declared opening hours (capacity.reports.hours)."""
        return self.status is SehStatus.closed and self.reason == OPENING_HOURS


class UnitFigures(_Figure):
    staffed: int | None = None
    occupied: int | None = None
    available: int | None = None
    measured_at: UtcTime


class UnitEntry(UnitFigures):
    """A unit as an event carries it: its figures and its type."""

    type: UnitType


class CapabilityStopFigure(_Figure):
    capability: Capability
    reason: str | None = None
    reason_text: str | None = None
    expected_until: UtcTime | None = None
    measured_at: UtcTime


class WaitingFigure(_Figure):
    triage_min: int | None = None
    doctor_min: int | None = None
    measured_at: UtcTime


class NedocsFigure(_Figure):
    score: int = Field(ge=0, le=200)
    measured_at: UtcTime


class EventBody(BaseModel):
    """A report as applied: the `e` field of a region stream entry (capacity.reports.service
    writes it). Parts a report did not carry are absent, not empty."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # a newer version's extra part must not stop an older worker

    facility_id: str = Field(min_length=1, max_length=64)
    region_id: str = Field(min_length=1, max_length=16)
    measured_at: UtcTime
    key_id: str
    seh: SehFigure | None = None
    units: tuple[UnitEntry, ...] = ()
    capability_stops: tuple[CapabilityStopFigure, ...] | None = None
    waiting: WaitingFigure | None = None
    nedocs: NedocsFigure | None = None

    @property
    def system(self) -> bool:
        return self.key_id == SYSTEM_KEY


@dataclass(frozen=True, slots=True)
class FacilityLive:
    """What is known of one facility now. Replaced whole on every change, never mutated, so a
    reader holding one (a snapshot being written) never sees it change under its hands."""

    facility_id: str
    ts: int = 0
    """The newest applied report's measured_at, epoch ms (0: never reported)."""
    digest: str = ""
    event_id: str = ""
    seh: SehFigure | None = None
    units: Mapping[str, UnitFigures] = field(default_factory=lambda: EMPTY)
    capability_stops: tuple[CapabilityStopFigure, ...] | None = None
    waiting: WaitingFigure | None = None
    nedocs: NedocsFigure | None = None
    stop_since: datetime | None = None
    """When the current stop began: the report that set it, kept through closed and stop_expired."""
    stale_since: datetime | None = None
    """Set by the watchdog's stale notice; cleared by the facility's own next report."""
    holds: Mapping[str, int] = field(default_factory=lambda: EMPTY)
    """Places held by announced patients, per need (`seh` or a unit type)."""

    @property
    def reported(self) -> bool:
        return self.ts > 0

    @property
    def measured_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.ts / 1000, UTC) if self.ts else None

    def held(self, need: str) -> int:
        return self.holds.get(need, 0)

    def with_hold(self, need: str, change: int) -> FacilityLive:
        """As announce.lua and release.lua change the hold counts (a count at zero is removed)."""
        holds = dict(self.holds)
        count = holds.get(need, 0) + change
        if count > 0:
            holds[need] = count
        else:
            holds.pop(need, None)
        return replace(self, holds=MappingProxyType(holds))

    def with_stale(self, since: datetime) -> FacilityLive:
        return replace(self, stale_since=since)

    def record(self) -> dict[str, Any]:
        """The state as the SQL record keeps it with each event (without holds and stale marks,
        which are not part of what the facility reported)."""
        state: dict[str, Any] = {
            "ts": self.ts,
            "digest": self.digest,
            "event_id": self.event_id,
            "seh": _plain(self.seh),
            "units": {name: _plain(figures) for name, figures in sorted(self.units.items())},
        }
        if self.capability_stops is not None:
            state["capability_stops"] = [_plain(s) for s in self.capability_stops]
        if self.waiting is not None:
            state["waiting"] = _plain(self.waiting)
        if self.nedocs is not None:
            state["nedocs"] = _plain(self.nedocs)
        if self.stop_since is not None:
            state["stop_since"] = utc_iso(self.stop_since)
        return state

    @classmethod
    def from_record(cls, facility_id: str, state: Mapping[str, Any]) -> FacilityLive:
        """The inverse of `record` (states recorded before stop_since existed have none)."""
        stops = state.get("capability_stops")
        since = state.get("stop_since")
        return cls(
            facility_id=facility_id,
            ts=int(state["ts"]),
            digest=state["digest"],
            event_id=state["event_id"],
            seh=SehFigure.model_validate(state["seh"]) if state.get("seh") else None,
            units=MappingProxyType({k: UnitFigures.model_validate(v) for k, v in sorted(state.get("units", {}).items())}),
            capability_stops=tuple(CapabilityStopFigure.model_validate(s) for s in stops) if stops is not None else None,
            waiting=WaitingFigure.model_validate(state["waiting"]) if state.get("waiting") else None,
            nedocs=NedocsFigure.model_validate(state["nedocs"]) if state.get("nedocs") else None,
            stop_since=datetime.fromisoformat(since) if since else None,
        )


def _plain(figure: BaseModel | None) -> dict[str, Any] | None:
    """A figure as JSON-ready data with times written the one way (`utc_iso`)."""
    if figure is None:
        return None
    return {k: utc_iso(v) if isinstance(v, datetime) else (v.value if isinstance(v, Enum) else v) for k, v in figure}


def stop_mark(status: str | None, measured_at: str) -> str:
    """What a report with this SEH status does to the stop mark, as apply.lua is told: '' leaves
    it (no SEH status), '-' clears it (not a stop), else the moment the stop is said to begin
    (kept if a stop is already marked)."""
    if status is None:
        return ""
    return measured_at if on_stop(status) else "-"


def fold(previous: FacilityLive | None, body: EventBody, *, event_id: str, digest: str) -> FacilityLive:
    """The facility's state after applying `body`: exactly what apply.lua writes to its hash."""
    before = previous or FacilityLive(facility_id=body.facility_id)
    units = dict(before.units)
    for unit in body.units:
        units[unit.type.value] = UnitFigures(
            staffed=unit.staffed, occupied=unit.occupied, available=unit.available, measured_at=unit.measured_at
        )
    seh = body.seh
    mark = stop_mark(seh.status.value, utc_iso(seh.measured_at)) if seh is not None else ""
    stop_since = before.stop_since
    if mark == "-":
        stop_since = None
    elif mark and stop_since is None:
        stop_since = seh.measured_at if seh is not None else None
    return FacilityLive(
        facility_id=body.facility_id,
        ts=int(body.measured_at.timestamp() * 1000),
        digest=digest,
        event_id=event_id,
        seh=body.seh if body.seh is not None else before.seh,
        units=MappingProxyType(dict(sorted(units.items()))),
        capability_stops=body.capability_stops if body.capability_stops is not None else before.capability_stops,
        waiting=body.waiting if body.waiting is not None else before.waiting,
        nedocs=body.nedocs if body.nedocs is not None else before.nedocs,
        stop_since=stop_since,
        stale_since=before.stale_since if body.system else None,
        holds=before.holds,
    )
