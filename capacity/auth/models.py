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


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id and label (never its secret), role and scope."""

    key_id: str
    label: str
    role: Role
    facility_id: str | None
    region_ids: frozenset[str] | None

    def may_read(self, region_id: str) -> bool:
        return self.region_ids is None or region_id in self.region_ids

    def may_write(self, facility_id: str) -> bool:
        return self.role is Role.facility and self.facility_id == facility_id
