"""Benchmark: a mass-casualty plan for 200 casualties over every SEH of the country, in process.

The planner (`capacity.incidents.planner.plan_incident`) is pure: the figure is its own cost, on
snapshots built as the incident API builds them: one `Receiving` per SEH of the 89 shipped
facilities (regions.registry.load_registry), its capabilities from the registry (plus the burns
centres and children's SEHs an admin would declare: `DECLARED`), the travel
model's minutes from the incident to every SEH at once (regions.travel: distance_km, detour,
banded_minutes_array, as capacity/dispatch/service.nearest does), and random live figures
(seeded: the same each run): about one SEH in six on stop, closed, stop expired or never reported,
free SEH places 0-15, free IC beds 0-8 or unknown, a capability on stop now and then.

Casualties: T1 30, T2 70, T3 100 (burns 5, children 15 among them), at five places across the
country (Amsterdam, Utrecht, Groningen, Maastricht, Middelburg). Timed separately:

- **plan**: `plan_incident` alone (goal, issue 22: ≤ 50 ms p99);
- **snapshot + plan**: the travel minutes and the `Receiving` list from the registry, then the plan.

Every plan is checked: placed + unplaced equals the casualties per class, and no SEH gets more
than its free places (nor T1 more than its free IC beds).

    .venv/bin/python -m bench.incidents [--runs 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.stats import median, percentile
from capacity.domain import on_stop
from capacity.incidents.planner import Casualties, Plan, Receiving, plan_incident
from capacity.incidents.rules import CLASSES
from regions.registry import Facility, Registry, load_registry
from regions.travel import DETOUR_FACTOR, banded_minutes_array, distance_km

GOAL_MS = 50.0
CASUALTIES = Casualties(T1=30, T2=70, T3=100, burns=5, paediatric=15)
PLACES = {
    "Amsterdam": (52.372, 4.900),
    "Utrecht": (52.090, 5.120),
    "Groningen": (53.219, 6.567),
    "Maastricht": (50.851, 5.691),
    "Middelburg": (51.499, 3.611),
}
DECLARED = {
    **dict.fromkeys(("seh-tno-41", "seh-tno-43", "seh-tno-58"), frozenset({"burns"})),
    **dict.fromkeys(
        ("seh-tno-00", "seh-tno-04", "seh-tno-20", "seh-tno-40", "seh-tno-54", "seh-tno-74", "seh-tno-75", "seh-tno-78"),
        frozenset({"paediatric_seh"}),
    ),
}
"""Capabilities an admin would declare (the shipped registry has only trauma centres): the three burns
centres (Maasstad Rotterdam, Martini Groningen, Rode Kruis Beverwijk) and the academic hospitals'
children's SEHs (Wilhelmina Kinderziekenhuis for Utrecht), so that burns and children are planned too."""
SNAPSHOTS = 20
STATUSES = ("open",) * 7 + ("busy",) * 3 + ("stop", "closed", "stop_expired", None)


def live_figures(sehs: list[Facility], registry: Registry, seed: int) -> list[tuple[str | None, int | None, int | None, frozenset[str]]]:
    """Random live figures per SEH (status, free SEH places, free IC beds, capabilities on stop)."""
    rng = random.Random(seed)
    figures = []
    for f in sehs:
        caps = sorted(registry.capabilities.get(f.id, frozenset()) | DECLARED.get(f.id, frozenset()))
        stops = frozenset(c for c in caps if rng.random() < 0.1)
        ic = None if rng.random() < 0.1 else rng.randint(0, 8)
        figures.append((rng.choice(STATUSES), rng.randint(0, 15), ic, stops))
    return figures


def capabilities_of(registry: Registry) -> dict[str, frozenset[str]]:
    """Shipped ∪ declared, as capacity.dispatch.capabilities.CapabilityBook holds them."""
    return {f: registry.capabilities.get(f, frozenset()) | DECLARED.get(f, frozenset()) for f in registry.facilities}


def snapshot(
    sehs: list[Facility], lat: np.ndarray, lon: np.ndarray, caps: dict[str, frozenset[str]], point: tuple[float, float], figures: list[Any]
) -> list[Receiving]:
    """What the incident API hands the planner: one Receiving per SEH with the model's minutes."""
    minutes = banded_minutes_array(distance_km(point[0], point[1], lat, lon) * DETOUR_FACTOR).tolist()
    empty: frozenset[str] = frozenset()
    return [
        Receiving(f.id, f.name, f.region_id, round(m, 1), status, seh, ic, caps.get(f.id, empty), stops)
        for f, m, (status, seh, ic, stops) in zip(sehs, minutes, figures, strict=True)
    ]


def check(plan: Plan, receiving: list[Receiving]) -> str | None:
    """What is wrong with a plan, or None."""
    for cls in CLASSES:
        if sum(getattr(line, cls) for line in plan.lines) + plan.unplaced[cls] != getattr(CASUALTIES, cls):
            return f"{cls}: placed + unplaced != casualties"
    known = {r.facility_id: r for r in receiving}
    for line in plan.lines:
        r = known[line.facility_id]
        if r.seh_status is None or on_stop(r.seh_status) or r.seh_free is None or line.T1 + line.T2 + line.T3 > r.seh_free:
            return f"{line.facility_id}: stopped, unknown or over its free places"
        if line.T1 and (r.ic_free is None or line.T1 > r.ic_free):
            return f"{line.facility_id}: T1 over its free IC beds"
    return None


def figures_of(samples_ns: list[int]) -> dict[str, float]:
    ms = [s / 1e6 for s in samples_ns]
    return {"p50_ms": median(ms), "p99_ms": percentile(ms, 99), "max_ms": max(ms), "runs": len(ms)}


def measure(runs: int) -> dict[str, Any]:
    registry = load_registry()
    sehs = [f for f in registry.facilities.values() if f.has_seh]
    lat = np.array([f.lat for f in sehs], dtype=np.float64)
    lon = np.array([f.lon for f in sehs], dtype=np.float64)
    states = [live_figures(sehs, registry, seed) for seed in range(SNAPSHOTS)]
    caps = capabilities_of(registry)
    cases = [(name, point, figures) for name, point in PLACES.items() for figures in states]
    plan_ns: list[int] = []
    total_ns: list[int] = []
    problems: list[str] = []
    placed = unplaced = unplaced_needs = lines = 0
    for i in range(-20, runs):  # 20 warm-up runs, not timed
        name, point, figures = cases[i % len(cases)]
        gc.collect(0)
        t0 = time.perf_counter_ns()
        receiving = snapshot(sehs, lat, lon, caps, point, figures)
        t1 = time.perf_counter_ns()
        plan = plan_incident(receiving=receiving, casualties=CASUALTIES)
        t2 = time.perf_counter_ns()
        if i < 0:
            continue
        plan_ns.append(t2 - t1)
        total_ns.append(t2 - t0)
        if (problem := check(plan, receiving)) is not None:
            problems.append(f"{name}: {problem}")
        lines += len(plan.lines)
        unplaced += sum(plan.unplaced.values())
        unplaced_needs += sum(plan.unplaced_needs.values())
        placed += sum(line.T1 + line.T2 + line.T3 for line in plan.lines)
    return {
        "casualties": {
            "T1": CASUALTIES.T1,
            "T2": CASUALTIES.T2,
            "T3": CASUALTIES.T3,
            "burns": CASUALTIES.burns,
            "paediatric": CASUALTIES.paediatric,
        },
        "sehs": len(sehs),
        "places": list(PLACES),
        "plan": figures_of(plan_ns),
        "snapshot_and_plan": figures_of(total_ns),
        "goal_ms": GOAL_MS,
        "within_goal": percentile([s / 1e6 for s in plan_ns], 99) <= GOAL_MS,
        "mean_lines": lines / runs,
        "mean_unplaced": unplaced / runs,
        "mean_unplaced_needs": unplaced_needs / runs,
        "mean_placed": placed / runs,
        "problems": problems[:5],
        "problem_count": len(problems),
    }


def run_incidents(*, runs: int = 500, console: Console | None = None, table: bool = True) -> dict[str, Any]:
    """The incident-plan benchmark; the figures as a dict (`table=False` inside `make bench`)."""
    console = console or Console()
    console.print(f"[dim]incident plans: {runs} runs in process[/dim]")
    result = measure(runs)
    if table:
        print_table(result, console)
    return result


def print_table(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Incident plan: 200 casualties over {result['sehs']} SEHs (in process)")
    table.add_column("what")
    for column in ("p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for key, label in (("plan", "plan_incident"), ("snapshot_and_plan", "travel minutes + Receiving list + plan")):
        f = result[key]
        table.add_row(label, f"{f['p50_ms']:.3f}", f"{f['p99_ms']:.3f}", f"{f['max_ms']:.3f}")
    console.print(table)
    console.print(
        f"mean {result['mean_lines']:.1f} hospitals per plan, {result['mean_placed']:.1f} placed, {result['mean_unplaced']:.1f} unplaced, "
        f"{result['mean_unplaced_needs']:.1f} of 20 special needs at an ordinary SEH; "
        f"{result['problem_count']} plans broke a rule"
    )


def incident_rows(result: dict[str, Any]) -> list[Any]:
    """The rows of `make bench`'s one table."""
    from bench.run import Row, fmt, met

    plan, total = result["plan"], result["snapshot_and_plan"]
    return [
        Row(f"incident plan, 200 casualties over {result['sehs']} SEHs, p50 ms (in process)", fmt(plan["p50_ms"], 2)),
        Row(
            "incident plan, p99 ms",
            fmt(plan["p99_ms"], 2),
            goal=f"≤ {GOAL_MS:.0f} ms",
            met=met(plan["p99_ms"], GOAL_MS, at_least=False),
        ),
        Row("incident travel minutes + snapshot + plan, p99 ms", fmt(total["p99_ms"], 2), last_in_section=True),
    ]


def incident_checks(result: dict[str, Any]) -> list[Any]:
    """Every timed plan kept the conservation law and every SEH's free places."""
    from bench.run import Check

    detail = f"{result['problem_count']} of {result['plan']['runs']} plans broke a rule" + (
        f": {result['problems']}" if result["problems"] else ""
    )
    return [Check("incident plans: placed + unplaced = casualties, never over free places", detail, result["problem_count"] == 0)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.incidents", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="timed plans (default 500)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = run_incidents(runs=args.runs)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["problem_count"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
