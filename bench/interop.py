"""Benchmark 6: reports/s through each adapter (CSV, EDXL-HAVE, FHIR SANER) as a ratio to the
JSON push, on the same server in the same run.

Every request carries one facility's report (its own facility key, the same figures: SEH open
and one unit), built by the adapters' own producers where there is one, so each adapter does
its whole job: parse, validate, resolve the facility, apply through the one atomic script,
commit to SQL, answer. A second CSV row shows a file of 20 facilities sent with an admin key
(reports/s counts reports, not files). Closed loop: each connection owns its facilities, so a
facility's next report never overtakes its previous one; measured_at goes up 1 ms a report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvloop
from rich.console import Console

from bench.load import Credentials, Http1, iso_ms
from bench.procs import Processes, free_port
from capacity.auth.service import create_key
from capacity.board.models import FacilityState, SehView, UnitView
from capacity.db import Database
from capacity.domain import Role, UnitType
from feeds.edxl_have import hospital_status_xml
from feeds.fhir_saner import measure_report
from regions.registry import Facility, load_registry

MARK = "2000-01-01T00:00:00Z"
"""Stands for measured_at in a prepared body; replaced per request."""
BATCH = 20


@dataclass(frozen=True)
class InteropPlan:
    seconds: int
    connections: int


@dataclass(frozen=True)
class Format:
    name: str
    path: str
    content_type: str
    per_request: int
    body: Callable[[list[Facility]], str]


def _state(facility: Facility) -> FacilityState:
    when = datetime.fromisoformat(MARK)
    unit = UnitView(type=UnitType.ic_adult, staffed=10, occupied=6, available=4, measured_at=when, age_s=0, stale=False)
    seh = SehView(status="open", reason=None, expected_until=None, measured_at=when, age_s=0, stale=False)
    return FacilityState(
        id=facility.id,
        name=facility.name,
        city=facility.city,
        kind=facility.kind,
        lat=facility.lat,
        lon=facility.lon,
        region_id=facility.region_id,
        reporting_interval_s=facility.reporting_interval_s,
        seh=seh,
        units=[unit],
        last_measured_at=when,
        last_event_id=None,
        stale=False,
    )


def _json(facilities: list[Facility]) -> str:
    return f'{{"measured_at":"{MARK}","seh":{{"status":"open"}},"units":[{{"type":"ic_adult","staffed":10,"occupied":6,"available":4}}]}}'


def _csv(facilities: list[Facility]) -> str:
    rows = "".join(f"{f.id},{MARK},ic_adult,10,6,4,open\n" for f in facilities)
    return "facility_id,measured_at,unit_type,staffed,occupied,available,seh_status\n" + rows


def _edxl(facilities: list[Facility]) -> str:
    produced = hospital_status_xml(facilities=[_state(f) for f in facilities])
    assert produced is not None
    return produced.decode()


def _fhir(facilities: list[Facility]) -> str:
    import orjson

    report = measure_report(state=_state(facilities[0]), generated_at=datetime.now(UTC))
    return orjson.dumps(report).decode()


FORMATS = (
    Format("JSON push", "/api/v1/facilities/{id}/reports", "application/json", 1, _json),
    Format("CSV, 1 facility", "/api/v1/reports.csv", "text/csv", 1, _csv),
    Format("EDXL-HAVE 1.0", "/edxl/have", "application/xml", 1, _edxl),
    Format("FHIR SANER", "/fhir/MeasureReport", "application/fhir+json", 1, _fhir),
    Format(f"CSV, {BATCH} facilities a file (admin key)", "/api/v1/reports.csv", "text/csv", BATCH, _csv),
)


def _request(fmt: Format, path: str, token: str, body: str) -> bytes:
    data = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {fmt.content_type}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def load(
    fmt: Format,
    *,
    port: int,
    groups: list[tuple[list[Facility], str]],
    seconds: float,
    connections: int,
    clock: list[int],
    once: bool = False,
) -> dict:
    """Closed loop for `seconds` (or each group once); each connection sends its own groups in turn."""
    templates = [(fmt.path.replace("{id}", group[0].id), token, fmt.body(group)) for group, token in groups]
    statuses: dict[int, int] = {}
    sent = 0
    deadline = time.monotonic() + seconds

    async def client(offset: int) -> None:
        nonlocal sent
        http = await Http1.open(port)
        mine = templates[offset::connections]
        i = 0
        try:
            while mine and (i < len(mine) if once else time.monotonic() < deadline):
                path, token, body = mine[i % len(mine)]
                clock[0] += 1
                status, _ = await http.send(_request(fmt, path, token, body.replace(MARK, iso_ms(clock[0]))))
                statuses[status] = statuses.get(status, 0) + 1
                if status in (200, 201):
                    sent += fmt.per_request
                i += 1
        finally:
            await http.close()

    started = time.monotonic()
    await asyncio.gather(*(client(c) for c in range(connections)))
    elapsed = time.monotonic() - started
    return {"reports": sent, "per_s": sent / elapsed, "statuses": statuses}


async def admin_key(sqlite: Path) -> str:
    db = Database(f"sqlite+aiosqlite:///{sqlite}")
    try:
        _, token = await create_key(db=db, registry=load_registry(), role=Role.admin, label="bench interop")
        return token
    finally:
        await db.dispose()


def run_interop(
    *, procs: Processes, ours_env: dict[str, str], credentials: Credentials, workdir: Path, plan: InteropPlan, console: Console
) -> dict:
    registry = load_registry()
    facilities = [f for f in registry.facilities.values() if f.has_seh]
    admin = asyncio.run(admin_key(workdir / "capacity.db"))
    single = [([f], credentials.facilities[f.id]) for f in facilities]
    batches = [(facilities[i : i + BATCH], admin) for i in range(0, len(facilities) - BATCH + 1, BATCH)]
    port = free_port()
    server = procs.start("ours-interop", ["bench.serve", "ours", str(port)], ours_env, port)
    clock = [int((datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1000)]
    results: dict[str, dict] = {}
    console.print(f"[bold]interop[/bold]: {plan.seconds} s per format, {plan.connections} connections, one server")
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            # every key verified once (scrypt) before anything is timed, as a running feed's would be
            warm = FORMATS[0]
            runner.run(load(warm, port=port, groups=single, seconds=0, connections=len(single), clock=clock, once=True))
            runner.run(load(FORMATS[-1], port=port, groups=batches[:1], seconds=0, connections=1, clock=clock, once=True))
            for fmt in FORMATS:
                groups = batches if fmt.per_request > 1 else single
                connections = min(plan.connections, len(groups))
                runner.run(load(fmt, port=port, groups=groups, seconds=1, connections=connections, clock=clock))
                results[fmt.name] = runner.run(
                    load(fmt, port=port, groups=groups, seconds=plan.seconds, connections=connections, clock=clock)
                )
                console.print(
                    f"[dim]  {fmt.name:40} {results[fmt.name]['per_s']:7.0f} reports/s  statuses {results[fmt.name]['statuses']}[/dim]"
                )
    finally:
        procs.stop(server)
    json_rate = results["JSON push"]["per_s"]
    return {
        "formats": {name: {**r, "ratio_to_json": r["per_s"] / json_rate if json_rate else 0.0} for name, r in results.items()},
        "not_2xx": sum(n for r in results.values() for status, n in r["statuses"].items() if status not in (200, 201)),
        "plan": {"seconds": plan.seconds, "connections": plan.connections, "batch": BATCH},
    }
