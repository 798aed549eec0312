"""The bare HTTP baseline: FastAPI, a POST route with a body model of the same shape as a report, a GET
route with the nearest lookup's query parameters and one on the board's path; small JSON answers.

No auth, no Redis, no middleware: what any FastAPI endpoint taking this body costs.
"""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class BareUnit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    staffed: int | None = Field(default=None, ge=0, le=100_000)
    occupied: int | None = Field(default=None, ge=0, le=100_000)
    available: int | None = Field(default=None, ge=0, le=100_000)


class BareSeh(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "busy", "stop", "closed"]
    reason: str | None = Field(default=None, max_length=200)
    expected_until: AwareDatetime | None = None


class BareReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measured_at: AwareDatetime
    seh: BareSeh | None = None
    units: list[BareUnit] | None = Field(default=None, max_length=13)


class BareAck(BaseModel):
    facility_id: str
    measured_at: AwareDatetime
    accepted: bool


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/v1/facilities/{facility_id}/reports", status_code=status.HTTP_201_CREATED)
    async def push(facility_id: str, report: BareReport) -> BareAck:
        return BareAck(facility_id=facility_id, measured_at=report.measured_at, accepted=True)

    @app.get("/api/v1/nearest")
    async def nearest(lat: float, lon: float, need: str) -> dict:
        return {"lat": lat, "lon": lon, "need": need, "candidates": []}

    @app.get("/api/v1/regions/{region_id}/board")
    async def board(region_id: str) -> dict:
        return {"region": {"id": region_id}, "last_event_id": None, "facilities": []}

    return app
