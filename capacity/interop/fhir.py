"""FHIR R4 SANER MeasureReport in and out: thin routes over the adapter in `feeds/` and `capacity.interop.service`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/fhir", tags=["interop"])
