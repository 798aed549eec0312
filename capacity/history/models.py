"""The SQL record: every applied Event with the facility's state after it, and the audit log.

Redis holds the live state; these tables hold what was acknowledged. An Event row keeps
the exact event as it went out on the region stream (`body`, so the stream tail can be
restored byte for byte) and the facility's full state after it (`state`, so the live
state can be rebuilt from the newest row per facility and history needs no replay).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from capacity.db import Base, UtcDateTime


class Event(Base):
    __tablename__ = "events"

    region_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(42), primary_key=True)
    event_ms: Mapped[int] = mapped_column(BigInteger)
    event_seq: Mapped[int] = mapped_column(Integer)
    facility_id: Mapped[str] = mapped_column(String(64))
    measured_at: Mapped[datetime] = mapped_column(UtcDateTime())
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime())
    key_id: Mapped[str] = mapped_column(String(24))
    seh_status: Mapped[str | None] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_events_facility_measured", "facility_id", "measured_at"),
        Index("ix_events_region_order", "region_id", "event_ms", "event_seq"),
        Index("ix_events_key_applied", "key_id", "applied_at"),
    )


class AuditEntry(Base):
    """Writes that are not reports (keys created or revoked, rebuilds, prunes); reports are
    audited through the events table, which names the key that sent each one."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    key_id: Mapped[str | None] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One applied event as the record keeps it (an Event row before it is written)."""

    region_id: str
    event_id: str
    facility_id: str
    measured_at: datetime
    key_id: str
    seh_status: str | None
    digest: str
    body: dict[str, Any]
    state: dict[str, Any]

    def row(self) -> dict[str, Any]:
        ms, _, seq = self.event_id.partition("-")
        return {
            "region_id": self.region_id,
            "event_id": self.event_id,
            "event_ms": int(ms),
            "event_seq": int(seq or 0),
            "facility_id": self.facility_id,
            "measured_at": self.measured_at,
            "applied_at": datetime.fromtimestamp(int(ms) / 1000, tz=UTC),
            "key_id": self.key_id,
            "seh_status": self.seh_status,
            "digest": self.digest,
            "body": self.body,
            "state": self.state,
        }


# Hourly rollups: what the coordinator's charts and reports read instead of the raw events.
# They are kept as events are recorded (capacity.history.rollups, in the same transaction)
# and rebuilt from the record by `capacity db rollups`. Hours are whole UTC hours counted
# from 1970-01-01T00:00Z (an integer, so steps of several hours are plain integer division
# on SQLite and PostgreSQL alike); Dutch local days are whole hours too, even across DST.


class UnitHour(Base):
    """The free places of one unit type of one facility as measured by its reports within one hour."""

    __tablename__ = "unit_hours"

    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(24), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_id: Mapped[str] = mapped_column(String(16))
    reports: Mapped[int] = mapped_column(Integer)
    free_min: Mapped[int | None] = mapped_column(Integer)
    free_max: Mapped[int | None] = mapped_column(Integer)
    free_last: Mapped[int | None] = mapped_column(Integer)
    """None when the hour's last report gave the count as unknown: a gap, never zero."""
    staffed_last: Mapped[int | None] = mapped_column(Integer)
    last_ms: Mapped[int] = mapped_column(BigInteger)
    """When the hour's last report was measured (ms): "last" whatever order events are recorded in."""

    __table_args__ = (Index("ix_unit_hours_region", "region_id", "unit", "hour"),)


class SehHour(Base):
    """One SEH within one hour: minutes on stop (stops that have ended) and its reported pressure."""

    __tablename__ = "seh_hours"

    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_id: Mapped[str] = mapped_column(String(16))
    stop_min: Mapped[float] = mapped_column(Float)
    """Minutes on stop within the hour, of stops that have ended (an ongoing stop is counted when read)."""
    closed_min: Mapped[float] = mapped_column(Float)
    """Minutes closed by the SEH's declared opening hours: planned, so not a stop."""
    reports: Mapped[int] = mapped_column(Integer)
    """Reports within the hour that gave NEDOCS or waiting times."""
    nedocs_max: Mapped[int | None] = mapped_column(Integer)
    nedocs_last: Mapped[int | None] = mapped_column(Integer)
    triage_last: Mapped[int | None] = mapped_column(Integer)
    doctor_last: Mapped[int | None] = mapped_column(Integer)
    last_ms: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_seh_hours_region", "region_id", "hour"),)


class StopEpisode(Base):
    """One stop of one SEH, from the report that began it to the one that ended it (None: going on).

    It keeps the reason it began with, as `capacity.history.service.stop_periods` does."""

    __tablename__ = "stop_episodes"

    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    region_id: Mapped[str] = mapped_column(String(16))
    end: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reason: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (Index("ix_stop_episodes_region", "region_id", "start"),)


class StopCursor(Base):
    """The newest SEH report folded into a facility's episodes, and the stop going on after it
    (the episode with no end), so folding a new report reads one row. An older report recorded
    later (the backstop, a system report) makes the episodes be folded again from before it."""

    __tablename__ = "stop_cursors"

    facility_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    region_id: Mapped[str] = mapped_column(String(16))
    measured_at: Mapped[datetime] = mapped_column(UtcDateTime())
    event_ms: Mapped[int] = mapped_column(BigInteger)
    event_seq: Mapped[int] = mapped_column(Integer)
    stopped_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    stop_reason: Mapped[str | None] = mapped_column(String(40))


class RollupPending(Base):
    """An event recorded but not yet folded into the rollups. The acknowledging worker folds its
    events just after the commit that let it answer 201 (so the fold is not in the hospital's
    wait); what a crash left here the `rollups` job folds. Claiming a row deletes it in the
    transaction that folds it, so each event is folded once whatever the number of workers."""

    __tablename__ = "rollup_pending"

    region_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(42), primary_key=True)
