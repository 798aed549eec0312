"""Stored API keys: the secret itself is never stored, only its salted scrypt hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from capacity.db import Base, UtcDateTime
from capacity.domain import Role


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    facility_id: Mapped[str | None] = mapped_column(String(64), index=True)
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    regions: Mapped[str | None] = mapped_column(String(200), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    replaced_by: Mapped[str | None] = mapped_column(String(24), default=None)

    def valid_until(self) -> datetime | None:
        """When the key stops working: revoked (a rotated key: at the end of its grace) or expired."""
        ends = [t for t in (self.revoked_at, self.expires_at) if t is not None]
        return min(ends) if ends else None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id and label (never its secret), role and scope."""

    key_id: str
    label: str
    role: Role
    facility_id: str | None
    region_ids: frozenset[str] | None
    valid_until: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until

    def may_read(self, region_id: str) -> bool:
        return self.region_ids is None or region_id in self.region_ids

    def may_write(self, facility_id: str) -> bool:
        return self.role is Role.facility and self.facility_id == facility_id
