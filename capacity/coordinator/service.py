"""The coordinator's figures, read from the hourly rollups only (never the raw events).

The stop report reads `stop_episodes` (one row per stop, a few per SEH a day), the series read
`unit_hours` and `seh_hours` with one grouped query each, so a quarter or a 90-day chart costs
the same whatever the number of reports behind it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Integer, case, func, literal, or_, select

from capacity.coordinator import published
from capacity.coordinator.schemas import (
    STEPS,
    CapacityPoint,
    CapacitySeries,
    DayMinutes,
    FacilityPressure,
    FacilityTotals,
    PressureSeries,
    PressureSeriesPoint,
    RegionTotals,
    StopReport,
)
from capacity.db import Database
from capacity.domain import LOCAL_TIME, OPENING_HOURS, utc_iso
from capacity.history.models import SehHour, StopEpisode, UnitHour
from regions.registry import Facility, Registry

HOUR_S = 3600
UNKNOWN_REASON = "unknown"


class NotInRegion(ValueError):
    """A series narrowed to a facility that is not one of the region's."""


def region_facility(*, registry: Registry, region_id: str, facility_id: str | None) -> Facility | None:
    """The facility a series is narrowed to (None: the whole region); NotInRegion when it is not the region's."""
    if facility_id is None:
        return None
    facility = registry.facilities.get(facility_id)
    if facility is None or facility.region_id != region_id:
        raise NotInRegion(f"facility {facility_id!r} is not one of region {region_id!r}")
    return facility


def sehs_of(*, facilities: Sequence[Facility]) -> list[Facility]:
    """The region's SEHs that take ambulances: the ones the LNAZ mean is taken over."""
    return [f for f in facilities if f.has_seh]


def local_days(*, start: datetime, end: datetime) -> list[tuple[date, datetime, datetime]]:
    """[start, end) cut at local midnights: (local date, from, until) per day it touches."""
    days = []
    cursor = start
    while cursor < end:
        day = cursor.astimezone(LOCAL_TIME).date()
        midnight = datetime.combine(day + timedelta(days=1), time(0), LOCAL_TIME).astimezone(UTC)
        until = min(end, midnight)
        days.append((day, cursor, until))
        cursor = until
    return days


def counted_days(*, start: datetime, end: datetime) -> float:
    """Local days in [start, end): a whole day counts one also when DST makes it 23 or 25 hours."""
    total = 0.0
    for day, since, until in local_days(start=start, end=end):
        # Aware datetimes of one zone subtract as wall time; the day's true length is in UTC.
        midnight = datetime.combine(day, time(0), LOCAL_TIME).astimezone(UTC)
        length = datetime.combine(day + timedelta(days=1), time(0), LOCAL_TIME).astimezone(UTC) - midnight
        total += (until - since) / length
    return total


@dataclass(slots=True)
class _Tally:
    stops: int = 0
    minutes: float = 0.0
    longest: float = 0.0
    closed_by_hours: float = 0.0
    ongoing: bool = False
    reasons: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add_stop(self, *, minutes: float, reason: str | None) -> None:
        self.stops += 1
        self.minutes += minutes
        self.longest = max(self.longest, minutes)
        self.reasons[reason or UNKNOWN_REASON] += minutes

    def merge(self, other: _Tally) -> None:
        self.stops += other.stops
        self.minutes += other.minutes
        self.longest = max(self.longest, other.longest)
        self.closed_by_hours += other.closed_by_hours
        for reason, minutes in other.reasons.items():
            self.reasons[reason] += minutes


def _per_day(value: float, days: float) -> float:
    return round(value / days, 1) if days > 0 else 0.0


def _reasons(tally: _Tally) -> dict[str, float]:
    return {reason: round(minutes, 1) for reason, minutes in sorted(tally.reasons.items())}


async def stop_report(
    *, db: Database, region_id: str, facilities: Sequence[Facility], start: datetime, end: datetime, now: datetime
) -> StopReport:
    """Stops of the region's SEHs in [start, end), counted up to now: every stop that overlaps
    the period, clipped to it; an ongoing one up to min(end, now). Closures by declared opening
    hours are planned, not stops: they are kept apart in `closed_by_hours_min`."""
    sehs = sehs_of(facilities=facilities)
    until = max(start, min(end, now))
    days = counted_days(start=start, end=until)
    query = select(StopEpisode.facility_id, StopEpisode.start, StopEpisode.end, StopEpisode.reason).where(
        StopEpisode.region_id == region_id,
        StopEpisode.start < until,
        or_(StopEpisode.end.is_(None), StopEpisode.end > start),
    )
    async with db.engine.connect() as conn:
        episodes = (await conn.execute(query)).all()
    tallies = {f.id: _Tally() for f in sehs}
    days_of_period = local_days(start=start, end=until)
    day_starts = [since for _, since, _ in days_of_period]
    per_day: dict[date, dict[str, float]] = {day: defaultdict(float) for day, _, _ in days_of_period}
    for episode in episodes:
        tally = tallies.get(episode.facility_id)
        if tally is None:  # no longer one of the region's SEHs
            continue
        since, to = max(episode.start, start), min(episode.end or until, until)
        if to <= since:
            continue
        minutes = (to - since).total_seconds() / 60
        if episode.reason == OPENING_HOURS:
            tally.closed_by_hours += minutes
            continue
        tally.add_stop(minutes=minutes, reason=episode.reason)
        tally.ongoing |= episode.end is None
        index = bisect_right(day_starts, since) - 1  # the local day the stop begins in, then the next ones
        while index < len(days_of_period) and days_of_period[index][1] < to:
            day, day_start, day_end = days_of_period[index]
            per_day[day][episode.facility_id] += (min(to, day_end) - max(since, day_start)).total_seconds() / 60
            index += 1
    region = _Tally()
    for tally in tallies.values():
        region.merge(tally)
    return StopReport(
        region_id=region_id,
        start=start,
        end=end,
        counted_until=until,
        days=round(days, 4),
        timezone=str(LOCAL_TIME),
        national=published.NATIONAL,
        published=published.BY_REGION.get(region_id),
        region=RegionTotals(
            sehs=len(sehs),
            stops=region.stops,
            minutes=round(region.minutes, 1),
            minutes_per_day=_per_day(region.minutes / len(sehs) if sehs else 0.0, days),
            longest_min=round(region.longest, 1),
            closed_by_hours_min=round(region.closed_by_hours, 1),
            reasons=_reasons(region),
        ),
        facilities=[
            FacilityTotals(
                facility_id=f.id,
                name=f.name,
                stops=tallies[f.id].stops,
                minutes=round(tallies[f.id].minutes, 1),
                minutes_per_day=_per_day(tallies[f.id].minutes, days),
                longest_min=round(tallies[f.id].longest, 1),
                ongoing=tallies[f.id].ongoing,
                closed_by_hours_min=round(tallies[f.id].closed_by_hours, 1),
                reasons=_reasons(tallies[f.id]),
            )
            for f in sehs
        ],
        per_day=[
            DayMinutes(date=day.isoformat(), minutes={f: round(m, 1) for f, m in sorted(minutes.items())})
            for day, minutes in sorted(per_day.items())
        ],
    )


def report_csv_rows(*, report: StopReport) -> tuple[list[str], list[list[object]]]:
    """The report as CSV: one row per SEH, then the region's row; one column per reason."""
    reasons = sorted({r for f in report.facilities for r in f.reasons} | set(report.region.reasons))
    header = ["facility_id", "name", "stops", "minutes", "minutes_per_day", "longest_min", "closed_by_hours_min"]
    header += [f"reason_{r}" for r in reasons]
    rows: list[list[object]] = [
        [f.facility_id, f.name, f.stops, f.minutes, f.minutes_per_day, f.longest_min, f.closed_by_hours_min]
        + [f.reasons.get(r, 0.0) for r in reasons]
        for f in report.facilities
    ]
    r = report.region
    rows.append(
        [report.region_id, f"region ({r.sehs} SEHs)", r.stops, r.minutes, r.minutes_per_day, r.longest_min, r.closed_by_hours_min]
        + [r.reasons.get(reason, 0.0) for reason in reasons]
    )
    return header, rows


def hour_range(*, start: datetime, end: datetime) -> tuple[int, int]:
    """[first, last) whole UTC hours since 1970 that [start, end) touches, `start` floored."""
    first = int(start.timestamp()) // HOUR_S
    last = -(-int(end.timestamp()) // HOUR_S)
    return first, max(last, first + 1)


def _at(hour: int) -> str:
    return utc_iso(datetime.fromtimestamp(hour * HOUR_S, tz=UTC))


def _bucket_labels(first: int, last: int, step: int) -> list[str]:
    """The start of each bucket as written in the answer, made once per bucket, not per point."""
    return [_at(hour) for hour in range(first, last, step)]


async def capacity_series(
    *, db: Database, region_id: str, unit: str, start: datetime, end: datetime, step: str, facility_id: str | None = None
) -> CapacitySeries:
    """Per bucket the region's summed free and staffed places of one unit type: each facility's
    last figure in the bucket, those whose last is unknown counted apart (never as zero)."""
    hours = STEPS[step]
    first, last = hour_range(start=start, end=end)
    bucket = ((UnitHour.hour - first) // literal(hours, Integer)).label("bucket")
    where = [UnitHour.region_id == region_id, UnitHour.unit == unit, UnitHour.hour >= first, UnitHour.hour < last]
    if facility_id is not None:
        where.append(UnitHour.facility_id == facility_id)
    columns = (UnitHour.facility_id, UnitHour.free_last, UnitHour.staffed_last, bucket)
    if hours == 1:  # one row per facility and hour already (the primary key): no ranking
        ranked = select(*columns).where(*where).subquery()
        last_rows: ColumnElement[bool] = ranked.c.bucket.is_not(None)
    else:
        rank = func.row_number().over(partition_by=(UnitHour.facility_id, bucket), order_by=UnitHour.hour.desc())
        ranked = select(*columns, rank.label("rn")).where(*where).subquery()
        last_rows = ranked.c.rn == 1
    grouped = (
        select(
            ranked.c.bucket,
            func.sum(ranked.c.free_last),
            func.sum(ranked.c.staffed_last),
            func.sum(case((ranked.c.free_last.is_(None), 1), else_=0)),
            func.count(),
        )
        .where(last_rows)
        .group_by(ranked.c.bucket)
    )
    names = select(UnitHour.facility_id).where(*where).distinct()
    async with db.engine.connect() as conn:
        found = {row[0]: row for row in await conn.execute(grouped)}
        facilities = sorted(await conn.scalars(names))
    # Built without validation (the figures come from our own tables, typed by their columns):
    # a year of hours is 8,784 points, and validating each cost more than the query.
    points: list[CapacityPoint] = []
    for index, at in enumerate(_bucket_labels(first, last, hours)):
        row = found.get(index)
        points.append(
            CapacityPoint.model_construct(
                at=at,
                free=None if row is None or row[1] is None else int(row[1]),
                staffed=None if row is None or row[2] is None else int(row[2]),
                unknown=0 if row is None else int(row[3]),
                reported=0 if row is None else int(row[4]),
            )
        )
    return CapacitySeries.model_construct(
        region_id=region_id, unit=unit, start=_at(first), end=utc_iso(end), step=step, facilities=facilities, points=points
    )


async def pressure_series(
    *,
    db: Database,
    region_id: str,
    facilities: Sequence[Facility],
    start: datetime,
    end: datetime,
    step: str,
    facility_id: str | None = None,
) -> PressureSeries:
    """Per SEH and bucket its last reported NEDOCS and waiting times, and the highest NEDOCS."""
    hours = STEPS[step]
    first, last = hour_range(start=start, end=end)
    bucket = ((SehHour.hour - first) // literal(hours, Integer)).label("bucket")
    partition = (SehHour.facility_id, bucket)
    where = [SehHour.region_id == region_id, SehHour.hour >= first, SehHour.hour < last, SehHour.reports > 0]
    if facility_id is not None:
        where.append(SehHour.facility_id == facility_id)
    columns = (SehHour.facility_id, SehHour.nedocs_last, SehHour.triage_last, SehHour.doctor_last, bucket)
    if hours == 1:  # one row per SEH and hour already: no ranking
        query = select(*columns, SehHour.nedocs_max.label("peak")).where(*where).order_by(SehHour.facility_id, SehHour.hour)
    else:
        peak = func.max(SehHour.nedocs_max).over(partition_by=partition).label("peak")
        rank = func.row_number().over(partition_by=partition, order_by=SehHour.hour.desc()).label("rn")
        ranked = select(*columns, peak, rank).where(*where).subquery()
        query = select(ranked).where(ranked.c.rn == 1).order_by(ranked.c.facility_id, ranked.c.bucket)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    labels = _bucket_labels(first, last, hours)
    points: dict[str, list[PressureSeriesPoint]] = defaultdict(list)
    for row in rows:  # built without validation, as in capacity_series
        points[row.facility_id].append(
            PressureSeriesPoint.model_construct(
                at=labels[row.bucket],
                nedocs=row.nedocs_last,
                nedocs_max=row.peak,
                triage_min=row.triage_last,
                doctor_min=row.doctor_last,
            )
        )
    sehs = [
        FacilityPressure.model_construct(facility_id=f.id, name=f.name, points=points.get(f.id, []))
        for f in sehs_of(facilities=facilities)
        if facility_id is None or f.id == facility_id
    ]
    return PressureSeries.model_construct(region_id=region_id, start=_at(first), end=utc_iso(end), step=step, facilities=sehs)
