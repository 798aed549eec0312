"""The identifiers table: which of our facilities another system's identifier names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from capacity.db import Base, UtcDateTime


class FacilityIdentifier(Base):
    __tablename__ = "facility_identifiers"

    scheme: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    facility_id: Mapped[str] = mapped_column(String(64), index=True)
    declared_by: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(UtcDateTime())
