"""Whether an alert's condition holds: pure functions of a region's board, its marks and the clock.

Each returns a `Verdict` (holds, not, or nothing known to judge by) with the words the alert
says; `transition` decides, with the subscription's state, whether the alert changes now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from capacity.alerts.models import Condition, FreeBelow, MyStopExpired, PressureAbove, PressureMeasure, SehOnStop, Stale, StopLonger
from capacity.board.models import FacilityState, RegionBoard
from capacity.domain import SehStatus, on_stop, utc_iso
from capacity.live.replica import RegionLive


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the alert should be firing now (None: nothing known to judge by) and what to say."""

    holds: bool | None
    text: str
    facilities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Marks:
    """What the live state knows beyond the board: which facilities the watchdog called stale
    (until their own next report), and when each current stop began (kept through a change to
    closed or stop_expired, whose reports carry a later measured_at)."""

    stale: dict[str, str]
    stops: dict[str, str]

    @classmethod
    def of(cls, region: RegionLive) -> Marks:
        facilities = region.facilities.items()
        return cls(
            stale={f: utc_iso(live.stale_since) for f, live in facilities if live.stale_since is not None},
            stops={f: utc_iso(live.stop_since) for f, live in facilities if live.stop_since is not None},
        )


def free_total(board: RegionBoard, unit_type: str) -> int | None:
    """The region's free places of a unit type: the sum over facilities that know their count
    (an unknown count is left out, not read as zero); None when no facility knows one."""
    counts = [u.free for f in board.facilities for u in f.units if u.type.value == unit_type and u.free is not None]
    return sum(counts) if counts else None


def _on_stop(facility: FacilityState) -> bool:
    return facility.seh is not None and on_stop(facility.seh.status)


def _named(facilities: list[FacilityState]) -> str:
    return ", ".join(f.name for f in facilities)


def judge_free_below(condition: FreeBelow, board: RegionBoard, *, firing: bool, margin: int) -> Verdict:
    """Fires below the threshold; once firing, clears only at threshold + margin or more."""
    unit, region = condition.unit_type.value, board.region.id
    total = free_total(board, unit)
    if total is None:
        return Verdict(None, f"no facility of {region} knows its free {unit} places")
    if total < (condition.threshold + margin if firing else condition.threshold):
        return Verdict(True, f"{total} free {unit} places in {region}, below {condition.threshold}")
    return Verdict(False, f"{total} free {unit} places in {region} again (threshold {condition.threshold})")


def judge_seh_on_stop(condition: SehOnStop, board: RegionBoard) -> Verdict:
    stopped = [f for f in board.facilities if _on_stop(f)]
    ids = tuple(f.id for f in stopped)
    region = board.region.id
    if len(stopped) >= condition.count:
        return Verdict(True, f"{len(stopped)} SEHs of {region} on stop: {_named(stopped)}"[:500], ids)
    return Verdict(False, f"{len(stopped)} SEHs of {region} on stop now, fewer than {condition.count}", ids)


def _watched(board: RegionBoard, facility_id: str | None) -> list[FacilityState]:
    return [f for f in board.facilities if facility_id is None or f.id == facility_id]


def stop_began(facility: FacilityState, marks: Marks) -> datetime | None:
    """When the facility's current stop began: the measured_at of the report that set it (the
    SEH's own measured_at when the stream did not show that report, e.g. after Redis was lost)."""
    if facility.seh is None or not _on_stop(facility):
        return None
    began = marks.stops.get(facility.id)
    return min(datetime.fromisoformat(began), facility.seh.measured_at) if began else facility.seh.measured_at


def judge_stop_longer(condition: StopLonger, board: RegionBoard, *, marks: Marks, now: datetime) -> Verdict:
    """A stop counts from the report that set it, through a change to closed or stop_expired."""
    limit = timedelta(minutes=condition.minutes)
    began = {f.id: at for f in _watched(board, condition.facility_id) if (at := stop_began(f, marks)) is not None}
    long = [f for f in board.facilities if f.id in began and now - began[f.id] > limit]
    if long:
        parts = [f"{f.name} for {int((now - began[f.id]).total_seconds() // 60)} min" for f in long]
        return Verdict(True, f"on stop longer than {condition.minutes} min: {', '.join(parts)}"[:500], tuple(f.id for f in long))
    where = condition.facility_id or f"any SEH of {board.region.id}"
    return Verdict(False, f"{where} no longer on stop for more than {condition.minutes} min")


def judge_stale(condition: Stale, board: RegionBoard, *, marks: Marks) -> Verdict:
    gone = [f for f in _watched(board, condition.facility_id) if f.id in marks.stale]
    if gone:
        parts = [f"{f.name} (since {marks.stale[f.id]})" for f in gone]
        return Verdict(True, f"figures stale: {', '.join(parts)}"[:500], tuple(f.id for f in gone))
    where = condition.facility_id or f"every facility of {board.region.id}"
    return Verdict(False, f"{where} reporting again")


def pressure_of(facility: FacilityState, measure: PressureMeasure) -> int | None:
    """The facility's fresh NEDOCS score or waiting time; a stale or unknown one is None."""
    if measure == "nedocs":
        return facility.nedocs.score if facility.nedocs and not facility.nedocs.stale else None
    if facility.waiting is None or facility.waiting.stale:
        return None
    return facility.waiting.triage_min if measure == "triage_min" else facility.waiting.doctor_min


def judge_pressure_above(condition: PressureAbove, board: RegionBoard, *, firing: bool, margin: int) -> Verdict:
    """Fires above the threshold; once firing, clears only at or below threshold − margin."""
    known = {f.id: value for f in _watched(board, condition.facility_id) if (value := pressure_of(f, condition.measure)) is not None}
    if not known:
        return Verdict(None, f"no fresh {condition.measure} reported")
    limit = condition.threshold - margin if firing else condition.threshold
    high = [f for f in board.facilities if f.id in known and known[f.id] > limit]
    if high:
        parts = [f"{f.name} {known[f.id]}" for f in high]
        return Verdict(True, f"{condition.measure} above {condition.threshold}: {', '.join(parts)}"[:500], tuple(f.id for f in high))
    return Verdict(False, f"{condition.measure} at or below {condition.threshold} again")


def judge_my_stop_expired(condition: MyStopExpired, board: RegionBoard) -> Verdict:
    own = _watched(board, condition.facility_id)
    if not own:
        return Verdict(None, f"facility {condition.facility_id} is not in region {board.region.id}")
    facility = own[0]
    status = facility.seh.status if facility.seh else None
    if status == SehStatus.stop_expired.value:
        return Verdict(True, f"the SEH stop of {facility.name} passed its expected end: confirm or end it", (facility.id,))
    return Verdict(False, f"{facility.name} reported its SEH status again ({status or 'none'})", (facility.id,))


def judge(condition: Condition, *, board: RegionBoard, marks: Marks, now: datetime, firing: bool, margin: int) -> Verdict:
    """Whether a condition holds against the live state (with hysteresis where it has any)."""
    if isinstance(condition, FreeBelow):
        return judge_free_below(condition, board, firing=firing, margin=margin)
    if isinstance(condition, SehOnStop):
        return judge_seh_on_stop(condition, board)
    if isinstance(condition, StopLonger):
        return judge_stop_longer(condition, board, marks=marks, now=now)
    if isinstance(condition, Stale):
        return judge_stale(condition, board, marks=marks)
    if isinstance(condition, PressureAbove):
        return judge_pressure_above(condition, board, firing=firing, margin=margin)
    return judge_my_stop_expired(condition, board)


def transition(current: SubState, verdict: Verdict, *, now: datetime, min_interval_s: float) -> bool | None:
    """The new firing flag when the alert should change now; None to leave it. A change that
    comes too soon after the last one waits (it is judged again every tick), so a condition
    that flips back within the interval sends nothing at all."""
    if verdict.holds is None or verdict.holds == current.firing:
        return None
    if current.at is not None and (now - current.at).total_seconds() < min_interval_s:
        return None
    return verdict.holds


@dataclass(frozen=True, slots=True)
class SubState:
    firing: bool
    at: datetime | None

    def encode(self) -> str:
        return orjson.dumps({"state": "firing" if self.firing else "clear", "at": utc_iso(self.at) if self.at else None}).decode()

    @classmethod
    def decode(cls, raw: str) -> SubState:
        data = orjson.loads(raw)
        return cls(firing=data["state"] == "firing", at=datetime.fromisoformat(data["at"]) if data.get("at") else None)
