"""Alerts: who wants to hear about what (subscriptions), what was said (alert events), and
how each webhook call went (deliveries). SQL tables first, then the API's pydantic schemas.

A subscription belongs to the key that made it; its condition is stored as the JSON the
API validated, so the evaluator reads it back through the same discriminated union.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, model_validator
from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from capacity.db import Base, UtcDateTime
from capacity.domain import UnitType
from capacity.history.schemas import Period

AlertState = Literal["firing", "cleared"]
PressureMeasure = Literal["nedocs", "doctor_min", "triage_min"]
MAX_THRESHOLD = 100_000
MAX_STOP_MINUTES = 7 * 24 * 60


class AlertSubscription(Base):
    __tablename__ = "alert_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(24), index=True)
    region_id: Mapped[str] = mapped_column(String(16), index=True)
    facility_id: Mapped[str | None] = mapped_column(String(64))
    condition: Mapped[dict[str, Any]] = mapped_column(JSON)
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AlertEvent(Base):
    """One transition (firing or cleared), keyed like the stream entry that carried it."""

    __tablename__ = "alert_events"

    region_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(42), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(40), index=True)
    key_id: Mapped[str] = mapped_column(String(24))
    state: Mapped[AlertState] = mapped_column(String(10))
    condition: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_alert_events_key_at", "key_id", "at"),)


class AlertDelivery(Base):
    """One webhook attempt: its answer's status code, or the error that stopped it."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64))
    subscription_id: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_alert_deliveries_subscription_at", "subscription_id", "at"),)


class FreeBelow(BaseModel):
    """The region's free places of one unit type, summed over the facilities that know theirs
    (an unknown count is left out, never read as zero), fall below `threshold`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["free_below"]
    unit_type: UnitType
    threshold: int = Field(ge=0, le=MAX_THRESHOLD)


class SehOnStop(BaseModel):
    """`count` or more SEHs of the region are on stop, closed or stop-expired at once."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["seh_on_stop"]
    count: int = Field(ge=1, le=1000)


class StopLonger(BaseModel):
    """A facility (this one, or any of the region) has been on stop longer than `minutes`,
    counted from the measured_at of its stop report."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["stop_longer"]
    minutes: int = Field(ge=1, le=MAX_STOP_MINUTES)
    facility_id: str | None = Field(default=None, max_length=64)


class Stale(BaseModel):
    """A facility (this one, or any of the region) went stale: the watchdog said so and no report followed."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["stale"]
    facility_id: str | None = Field(default=None, max_length=64)


class PressureAbove(BaseModel):
    """A facility's (this one, or any of the region) fresh NEDOCS score or waiting time to a doctor
    (or to triage) rises above `threshold`; clears at or below threshold minus the free margin."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["pressure_above"]
    measure: PressureMeasure
    threshold: int = Field(ge=0, le=1440, description="NEDOCS 0–200, waiting times in minutes.")
    facility_id: str | None = Field(default=None, max_length=64)


class MyStopExpired(BaseModel):
    """A hospital's own SEH stop passed its expected end without a new report (facility keys only)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["my_stop_expired"]
    facility_id: str | None = Field(default=None, max_length=64, description="Default: the key's own facility.")


Condition = Annotated[FreeBelow | SehOnStop | StopLonger | Stale | PressureAbove | MyStopExpired, Field(discriminator="type")]
CONDITION = TypeAdapter(Condition)


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: Condition
    region: str | None = Field(default=None, max_length=16, description="Required for conditions on a whole region.")
    webhook_url: HttpUrl | None = Field(default=None, description="http or https; alerts are POSTed here as signed JSON.")
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=128, description="HMAC-SHA256 key; left out: one is made and shown once."
    )

    @model_validator(mode="after")
    def _secret_needs_url(self) -> SubscriptionRequest:
        if self.webhook_secret is not None and self.webhook_url is None:
            raise ValueError("webhook_secret is only used with a webhook_url")
        if self.webhook_url is not None and len(str(self.webhook_url)) > 2000:
            raise ValueError("webhook_url is longer than 2000 characters")
        return self


class Subscription(BaseModel):
    id: str
    key_id: str
    region_id: str
    facility_id: str | None
    condition: Condition
    webhook_url: str | None
    created_at: datetime


class CreatedSubscription(Subscription):
    webhook_secret: str | None = Field(default=None, description="The generated webhook secret: shown in this answer only, never again.")


class AlertItem(BaseModel):
    region_id: str
    event_id: str
    subscription_id: str
    key_id: str
    state: AlertState
    condition: dict[str, Any]
    message: str
    at: datetime


class DeliveryItem(BaseModel):
    delivery_id: str
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class AlertPeriod(Period):
    limit: int = Field(default=1000, ge=1, le=10_000)
