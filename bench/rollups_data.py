"""A generated year of 5-minute reports for every shipped facility, folded straight into rollup rows.

A year of 5-minute reports from 89 facilities is about 9.4 million reports: recording them as
raw events and folding them through `insert_events` would take hours here. The walk is simulated
with numpy instead and folded per hour into the rows `capacity.history.rollups` keeps
(`unit_hours`, `seh_hours`, `stop_episodes`); `bench.rollups` checks on one generated week that
the same reports recorded through `insert_events` give the same rows.

Each facility reports every 5 minutes (a fixed second offset within the 5 minutes, so 12 reports
an hour): its SEH status (mostly open, sometimes busy, a stop a few times a week of 20–180 minutes
with a reason from `StopReason`, one in ten a closure), NEDOCS and waiting times, and `seh_places`,
`ic_adult` and 2–4 other unit types whose free places take a bounded random walk, sometimes
unknown for up to two hours. Facilities without an SEH report only their units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from capacity.domain import StopReason, UnitType, utc_iso
from regions.registry import Facility

STEP_MS = 5 * 60 * 1000
HOUR_MS = 3_600_000
PER_HOUR = 12
REASONS = tuple(r.value for r in StopReason)
OPEN, BUSY, STOP, CLOSED = 0, 1, 2, 3
STATUS_NAMES = ("open", "busy", "stop", "closed")
OTHER_UNITS = tuple(u.value for u in UnitType if u not in (UnitType.seh_places, UnitType.ic_adult))
UNKNOWN = -1


@dataclass
class Walk:
    """One facility's reports: `steps` reports 5 minutes apart from `start_ms` (the first hour's offset)."""

    facility: Facility
    start_ms: int
    steps: int
    seh: bool
    status: np.ndarray  # int8 per report (OPEN, BUSY, STOP, CLOSED)
    reason: np.ndarray  # int8 per report: index into REASONS while on stop, else -1
    nedocs: np.ndarray
    triage: np.ndarray
    doctor: np.ndarray
    staffed: dict[str, int] = field(default_factory=dict)
    available: dict[str, np.ndarray] = field(default_factory=dict)  # UNKNOWN where the count was not known

    def ms(self, step: int) -> int:
        return self.start_ms + step * STEP_MS


def _runs(rng: np.random.Generator, steps: int, count: int, shortest: int, longest: int) -> list[tuple[int, int]]:
    """`count` non-overlapping runs [start, end) of `shortest`..`longest` steps, in order."""
    starts = np.sort(rng.integers(0, steps, size=count))
    runs, free_from = [], 0
    for start in starts.tolist():
        if start < free_from + 1:  # a report of another status between two runs
            continue
        end = start + int(rng.integers(shortest, longest + 1))
        runs.append((start, min(end, steps)))
        free_from = end
    return runs


def _bounded_walk(rng: np.random.Generator, steps: int, top: int, start: int, spread: float) -> np.ndarray:
    """A random walk reflected into [0, top]."""
    moves = rng.choice(np.array([-1, 0, 1], dtype=np.int64), size=steps, p=[spread / 2, 1 - spread, spread / 2])
    x = start + np.cumsum(moves)
    span = 2 * top
    r = np.mod(x, span)
    return np.where(r > top, span - r, r).astype(np.int64)


def simulate(facility: Facility, *, first_hour: int, hours: int, seed: int) -> Walk:
    rng = np.random.default_rng(seed)
    steps = hours * PER_HOUR
    start_ms = first_hour * HOUR_MS + int(rng.integers(0, 300)) * 1000
    seh = facility.has_seh
    status = np.zeros(steps, dtype=np.int8)
    reason = np.full(steps, -1, dtype=np.int8)
    weeks = hours / 168
    if seh:
        for start, end in _runs(rng, steps, int(rng.poisson(4 * weeks)), 6, 24):
            status[start:end] = BUSY
        for start, end in _runs(rng, steps, int(rng.poisson(3 * weeks)), 4, 36):  # 20–180 minutes
            status[start:end] = CLOSED if rng.random() < 0.1 else STOP
            reason[start:end] = int(rng.integers(0, len(REASONS)))
    walk = Walk(
        facility=facility,
        start_ms=start_ms,
        steps=steps,
        seh=seh,
        status=status,
        reason=reason,
        nedocs=_bounded_walk(rng, steps, 200, int(rng.integers(20, 120)), 0.6),
        triage=_bounded_walk(rng, steps, 120, int(rng.integers(0, 30)), 0.5),
        doctor=_bounded_walk(rng, steps, 240, int(rng.integers(10, 90)), 0.5),
    )
    others = rng.choice(len(OTHER_UNITS), size=int(rng.integers(2, 5)), replace=False)
    for unit in (UnitType.seh_places.value, UnitType.ic_adult.value, *(OTHER_UNITS[i] for i in sorted(others.tolist()))):
        top = int(rng.integers(6, 40))
        free = _bounded_walk(rng, steps, top, int(rng.integers(0, top + 1)), 0.3)
        for start, end in _runs(rng, steps, int(rng.poisson(1.5 * weeks)), 1, 24):
            free[start:end] = UNKNOWN
        walk.staffed[unit] = top
        walk.available[unit] = free
    return walk


def _none(values: np.ndarray, missing: np.ndarray) -> list[int | None]:
    return [None if m else v for v, m in zip(values.tolist(), missing.tolist(), strict=True)]


def unit_rows(walk: Walk, first: int = 0, last: int | None = None) -> list[tuple[Any, ...]]:
    """unit_hours rows (facility_id, unit, hour, region_id, reports, free_min, free_max, free_last,
    staffed_last, last_ms) for the whole hours of reports [first, last)."""
    last = walk.steps if last is None else last
    assert first % PER_HOUR == 0 and last % PER_HOUR == 0
    hours = (last - first) // PER_HOUR
    first_hour = walk.start_ms // HOUR_MS + first // PER_HOUR
    hour_ids = list(range(first_hour, first_hour + hours))
    last_ms = (walk.start_ms + (np.arange(hours) * PER_HOUR + first + PER_HOUR - 1) * STEP_MS).tolist()
    f, region = walk.facility.id, walk.facility.region_id
    rows: list[tuple[Any, ...]] = []
    for unit, series in walk.available.items():
        grid = series[first:last].reshape(hours, PER_HOUR)
        known = grid != UNKNOWN
        none_known = ~known.any(axis=1)
        low = _none(np.where(known, grid, 1 << 30).min(axis=1), none_known)
        high = _none(np.where(known, grid, -1).max(axis=1), none_known)
        end = grid[:, -1]
        final = _none(end, end == UNKNOWN)
        staffed = walk.staffed[unit]
        rows += zip(
            [f] * hours, [unit] * hours, hour_ids, [region] * hours, [PER_HOUR] * hours, low, high, final, [staffed] * hours, last_ms,
            strict=True,
        )  # fmt: skip
    return rows


def episodes(walk: Walk, first: int = 0, last: int | None = None) -> list[tuple[int, int | None, str]]:
    """The stops within reports [first, last): (start ms, end ms or None while going on, reason)."""
    last = walk.steps if last is None else last
    on = np.isin(walk.status[first:last], (STOP, CLOSED)).astype(np.int8)
    edges = np.diff(np.concatenate(([0], on, [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    found = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        found.append((walk.ms(first + s), None if first + e >= last else walk.ms(first + e), REASONS[walk.reason[first + s]]))
    return found


def seh_rows(walk: Walk, first: int = 0, last: int | None = None) -> list[tuple[Any, ...]]:
    """seh_hours rows (facility_id, hour, region_id, stop_min, closed_min, reports, nedocs_max,
    nedocs_last, triage_last, doctor_last, last_ms) for the whole hours of reports [first, last)."""
    if not walk.seh:
        return []
    last = walk.steps if last is None else last
    hours = (last - first) // PER_HOUR
    first_hour = walk.start_ms // HOUR_MS + first // PER_HOUR
    stop_min = np.zeros(hours)
    for start, end, _ in episodes(walk, first, last):
        if end is None:
            continue  # an ongoing stop is counted when read
        cursor = start
        while cursor < end:
            hour = cursor // HOUR_MS
            until = min(end, (hour + 1) * HOUR_MS)
            stop_min[hour - first_hour] += (until - cursor) / 60_000
            cursor = until
    f, region = walk.facility.id, walk.facility.region_id
    nedocs = walk.nedocs[first:last].reshape(hours, PER_HOUR)
    last_ms = (walk.start_ms + (np.arange(hours) * PER_HOUR + first + PER_HOUR - 1) * STEP_MS).tolist()
    return list(
        zip(
            [f] * hours,
            range(first_hour, first_hour + hours),
            [region] * hours,
            stop_min.tolist(),
            [0.0] * hours,
            [PER_HOUR] * hours,
            nedocs.max(axis=1).tolist(),
            nedocs[:, -1].tolist(),
            walk.triage[first + PER_HOUR - 1 : last : PER_HOUR].tolist(),
            walk.doctor[first + PER_HOUR - 1 : last : PER_HOUR].tolist(),
            last_ms,
            strict=True,
        )
    )


def episode_rows(walk: Walk, first: int = 0, last: int | None = None) -> list[dict[str, Any]]:
    """stop_episodes rows as dicts (SQLAlchemy binds the datetimes per dialect)."""

    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    return [
        {
            "facility_id": walk.facility.id,
            "start": at(start),
            "region_id": walk.facility.region_id,
            "end": None if end is None else at(end),
            "reason": reason,
        }
        for start, end, reason in episodes(walk, first, last)
    ]


def event_body(walk: Walk, step: int) -> dict[str, Any]:
    """The event the service records for the report at `step` (capacity.reports.service.canonical_event's shape)."""
    measured = utc_iso(datetime.fromtimestamp(walk.ms(step) / 1000, tz=UTC))
    seh: dict[str, Any] | None = None
    if walk.seh:
        status = int(walk.status[step])
        seh = {"status": STATUS_NAMES[status], "reason": None, "reason_text": None, "expected_until": None, "measured_at": measured}
        if status in (STOP, CLOSED):
            reason = REASONS[walk.reason[step]]
            until = utc_iso(datetime.fromtimestamp(walk.ms(step + 24) / 1000, tz=UTC))
            seh |= {"reason": reason, "reason_text": "bench" if reason == StopReason.other else None, "expected_until": until}
    units = []
    for unit, series in walk.available.items():
        free = int(series[step])
        staffed = walk.staffed[unit]
        known = free != UNKNOWN
        units.append(
            {"type": unit, "staffed": staffed, "occupied": staffed - free if known else None, "available": free if known else None,
             "measured_at": measured}
        )  # fmt: skip
    event: dict[str, Any] = {
        "facility_id": walk.facility.id,
        "region_id": walk.facility.region_id,
        "measured_at": measured,
        "key_id": "bench",
        "seh": seh,
        "units": units,
    }
    if walk.seh:
        event["waiting"] = {"triage_min": int(walk.triage[step]), "doctor_min": int(walk.doctor[step]), "measured_at": measured}
        event["nedocs"] = {"score": int(walk.nedocs[step]), "measured_at": measured}
    return event
