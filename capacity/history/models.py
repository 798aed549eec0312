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

from sqlalchemy import JSON, BigInteger, Index, Integer, String
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
