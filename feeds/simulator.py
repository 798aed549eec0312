"""Realistic report traffic from the real hospital list (and the demo care places), sent through
the public HTTP API.

Each facility gets plausible units for its kind; over time SEHs go busy, on stop (with a
reason and an expected end) and reopen, with waiting times and a NEDOCS score to match; beds
fill and empty; and a share of facilities go quiet after one old report so that they show as stale.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from regions.registry import Facility

log = logging.getLogger(__name__)

NEDOCS_BY_STATUS = {"open": (10, 90), "busy": (80, 150), "stop": (130, 195), "closed": (0, 20)}
STOP_REASONS = ("crowding", "crowding", "no_ic_bed", "staffing", "equipment", "ict_failure")
BIG = ("Academisch", "UMC", "Erasmus", "Radboud", "Isala", "Medisch Spectrum", "Amphia", "Catharina", "Maxima")


@dataclass
class SimulatedFacility:
    facility: Facility
    token: str
    staffed: dict[str, int]
    occupied: dict[str, int] = field(default_factory=dict)
    seh: str = "open"
    quiet: bool = False


CARE_SIZES = {"elv": (6, 20), "grz": (10, 40), "psychiatry": (20, 60)}


def _units_for(facility: Facility, rng: random.Random) -> dict[str, int]:
    if facility.units:
        return {u: rng.randint(*CARE_SIZES.get(u, (4, 12))) for u in facility.units}
    scale = 2 if any(word in facility.name for word in BIG) else 1
    units = {
        "ic_adult": rng.randint(6, 16) * scale,
        "medium_care": rng.randint(6, 14) * scale,
        "ccu": rng.randint(4, 10),
        "stroke": rng.randint(4, 12),
        "ward_general": rng.randint(80, 200) * scale,
        "paediatrics": rng.randint(10, 30),
        "obstetrics": rng.randint(8, 24),
    }
    if facility.has_seh:
        units["seh_places"] = rng.randint(10, 24) * scale
    if scale == 2:
        units["nicu"] = rng.randint(10, 24)
        units["picu"] = rng.randint(4, 10)
    return units


class Simulator:
    def __init__(
        self,
        *,
        base_url: str,
        tokens: dict[str, str],
        facilities: list[Facility],
        seed: int | None = None,
        quiet_share: float = 0.08,
    ) -> None:
        self.rng = random.Random(seed)
        self.base_url = base_url.rstrip("/")
        self.sent = 0
        self.refused = 0
        self.superseded = 0
        self.sims = []
        for f in facilities:
            if not f.has_seh and f.kind != "hospital_no_seh" and not f.units:
                continue  # a GP post without beds has nothing to report yet
            sim = SimulatedFacility(facility=f, token=tokens[f.id], staffed=_units_for(f, self.rng))
            sim.occupied = {t: int(n * self.rng.uniform(0.6, 0.95)) for t, n in sim.staffed.items()}
            sim.quiet = self.rng.random() < quiet_share
            self.sims.append(sim)

    def report_for(self, sim: SimulatedFacility, measured_at: datetime, *, change_seh: bool, all_units: bool = False) -> dict[str, Any]:
        units = []
        for unit_type, staffed in sim.staffed.items():
            step = self.rng.choice((-2, -1, -1, 0, 1, 1, 2))
            sim.occupied[unit_type] = min(staffed, max(0, sim.occupied[unit_type] + step))
            units.append(
                {"type": unit_type, "staffed": staffed, "occupied": sim.occupied[unit_type], "available": staffed - sim.occupied[unit_type]}
            )
        report: dict[str, Any] = {
            "measured_at": measured_at.isoformat(),
            "units": units if all_units else self.rng.sample(units, k=self.rng.randint(1, len(units))),
        }
        if sim.facility.has_seh and change_seh:
            sim.seh = self._next_status(sim.seh)
            seh: dict[str, Any] = {"status": sim.seh}
            if sim.seh in ("stop", "closed"):
                seh["reason"] = self.rng.choice(STOP_REASONS)
                seh["expected_until"] = (measured_at + timedelta(minutes=self.rng.choice((30, 45, 60, 90)))).isoformat()
            report["seh"] = seh
        if sim.facility.has_seh:
            low, high = NEDOCS_BY_STATUS.get(sim.seh, (20, 90))
            report["nedocs"] = self.rng.randint(low, high)
            report["waiting"] = {"triage_min": self.rng.randint(0, 25), "doctor_min": self.rng.randint(5, 20 + high // 2)}
        return report

    def _next_status(self, current: str) -> str:
        if current in ("stop", "closed"):
            return "open" if self.rng.random() < 0.6 else current
        roll = self.rng.random()
        return "stop" if roll < 0.08 else "busy" if roll < 0.3 else "open"

    async def push(self, client: httpx.AsyncClient, sim: SimulatedFacility, report: dict[str, Any]) -> None:
        response = await client.post(
            f"{self.base_url}/api/v1/facilities/{sim.facility.id}/reports",
            json=report,
            headers={"Authorization": f"Bearer {sim.token}"},
        )
        if response.status_code in (200, 201):
            self.sent += 1
        elif response.status_code == 409 and sim.quiet:
            self.superseded += 1  # a re-run's backdated report for a quiet facility: the stored one is newer
        else:
            self.refused += 1
            log.warning("report for %s refused: %s %s", sim.facility.id, response.status_code, response.text[:200])

    async def run(self, *, interval_s: float = 0.5, duration_s: float | None = None) -> None:
        """Send every facility's opening report, then one change every `interval_s`."""
        now = datetime.now(UTC)
        async with httpx.AsyncClient(timeout=10) as client:
            for sim in self.sims:
                measured = now - timedelta(minutes=self.rng.randint(20, 50)) if sim.quiet else now
                await self.push(client, sim, self.report_for(sim, measured, change_seh=True, all_units=True))
            loop = asyncio.get_running_loop()
            deadline = None if duration_s is None else loop.time() + duration_s
            active = [s for s in self.sims if not s.quiet]
            while deadline is None or loop.time() < deadline:
                await asyncio.sleep(interval_s)
                sim = self.rng.choice(active)
                report = self.report_for(sim, datetime.now(UTC), change_seh=self.rng.random() < 0.3)
                await self.push(client, sim, report)
