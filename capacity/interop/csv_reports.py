"""CSV bulk reports: thin routes over the adapter in `feeds/` and `capacity.interop.service`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["interop"])
