"""The pure planner: which hospital gets how many casualties of each class, and why.

No I/O: the caller reads the live state (free places net of holds, stops, capabilities) and the
travel minutes, and hands the planner one `Receiving` per hospital. Same input, same plan: every
ordering is by (travel minutes, facility id). The rules and their sources are in `rules.py`.

The order of placement (RULES.md says why):
1. burns casualties to burns centres, at any distance, most severe first;
2. within the norm, first at each hospital's share, then above it: per class (T1, T2, T3) the
   children to paediatric SEHs (above their share before an ordinary SEH), then the rest, T1 to
   trauma centres first (above their share before an ordinary SEH), each nearest first;
3. beyond the norm, the same, only for casualties nothing within the norm could take.
The nearest hospital within the norm is spared: it gets no T3 until the others are at their share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from capacity.domain import on_stop
from capacity.incidents.rules import CLASSES, DEFAULT_RULES, Rules


@dataclass(frozen=True, slots=True)
class Receiving:
    """One hospital as the planner sees it at this moment."""

    facility_id: str
    name: str
    region_id: str
    travel_min: float
    seh_status: str | None
    seh_free: int | None
    ic_free: int | None
    capabilities: frozenset[str]
    capability_stops: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Casualties:
    """Casualties per triage class; `burns` and `paediatric` are counts among them (class not given)."""

    T1: int
    T2: int
    T3: int
    burns: int = 0
    paediatric: int = 0

    def __post_init__(self) -> None:
        counts = (self.T1, self.T2, self.T3, self.burns, self.paediatric)
        if any(n < 0 for n in counts):
            raise ValueError("casualty counts cannot be negative")
        if self.burns + self.paediatric > self.T1 + self.T2 + self.T3:
            raise ValueError("special needs cannot outnumber the casualties")


@dataclass(frozen=True, slots=True)
class PlanLine:
    """What one hospital gets: counts per class (needs among them), travel time and why."""

    facility_id: str
    name: str
    region_id: str
    T1: int
    T2: int
    T3: int
    burns: int
    paediatric: int
    travel_min: float
    within_norm: bool
    why: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """A proposed plan; `unplaced` per class, `unplaced_needs` the needs no suitable hospital could take."""

    lines: tuple[PlanLine, ...]
    unplaced: dict[str, int]
    unplaced_needs: dict[str, int]
    rules: str


@dataclass(slots=True)
class _Hospital:
    """A usable hospital while planning: what is left of its places and share, what it got and why."""

    r: Receiving
    within: bool
    seh_left: int
    ic_left: int
    share_left: int
    ic_share_left: int
    spared: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("T1", "T2", "T3", "burns", "paediatric"), 0))
    why: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Group:
    """Casualties of one class with one need (or none) still to place."""

    cls: str
    kind: str  # "burns", "paediatric", "burns_fallback", "paediatric_fallback" or "plain"
    count: int


LABELS = {"burns": " burns", "paediatric": " child", "burns_fallback": " burns", "paediatric_fallback": " child", "plain": ""}
REASONS = {
    "burns": "burns centre",
    "paediatric": "paediatric SEH",
    "burns_fallback": "no burns centre could take them",
    "paediatric_fallback": "no paediatric SEH within reach could take them",
}
ABOVE_SHARE = {
    "burns": "above its share: no other burns centre had a share left",
    "paediatric": "above its share: children go to a paediatric SEH before an ordinary one",
}


def _share(free: int, rules: Rules) -> int:
    return max(rules.share_min, int(free * rules.share_fraction)) if free > 0 else 0


def _usable(r: Receiving) -> bool:
    """An SEH that reported, is not on stop/closed/stop expired, and has a known free place."""
    return r.seh_status is not None and not on_stop(r.seh_status) and r.seh_free is not None and r.seh_free > 0


def _can(h: _Hospital, capability: str) -> bool:
    return capability in h.r.capabilities and capability not in h.r.capability_stops


def _order(r: Receiving) -> tuple[float, str]:
    """Nearest first, ties by facility id; unknown minutes (NaN) last, like infinitely far."""
    return (r.travel_min if not math.isnan(r.travel_min) else math.inf, r.facility_id)


def _hospitals(receiving: Sequence[Receiving], rules: Rules) -> list[_Hospital]:
    """The usable hospitals, nearest first (ties by facility id, so the plan is deterministic)."""
    hospitals = []
    for r in sorted(receiving, key=_order):
        if _usable(r):
            seh, ic = r.seh_free or 0, max(0, r.ic_free or 0)
            within = r.travel_min <= rules.norm_min  # False for NaN and inf
            hospitals.append(_Hospital(r, within, seh, ic, _share(seh, rules), _share(ic, rules)))
    if rules.spare_nearest and hospitals and hospitals[0].within:
        hospitals[0].spared = True
    return hospitals


def _split_needs(casualties: Casualties) -> dict[str, list[_Group]]:
    """Per class: burns, children, their two fallbacks, the rest. Needs come from the most severe first."""
    left = {"T1": casualties.T1, "T2": casualties.T2, "T3": casualties.T3}
    groups: dict[str, list[_Group]] = {cls: [] for cls in CLASSES}
    for kind, total in (("burns", casualties.burns), ("paediatric", casualties.paediatric)):
        for cls in CLASSES:
            n = min(total, left[cls])
            groups[cls].append(_Group(cls, kind, n))
            left[cls] -= n
            total -= n
    for cls in CLASSES:
        groups[cls] += [_Group(cls, "burns_fallback", 0), _Group(cls, "paediatric_fallback", 0), _Group(cls, "plain", left[cls])]
    return groups


def _reason(h: _Hospital, group: _Group, *, full: bool, rules: Rules) -> str:
    parts = [REASONS[group.kind]] if group.kind in REASONS else []
    if group.cls == "T1" and group.kind != "burns":
        trauma = _can(h, "trauma_centre")
        parts.append("trauma centre with a free IC bed" if trauma else "free IC bed")
        if not trauma and h.within and rules.trauma_first:
            parts.append("no trauma centre within the norm could take them")
    elif not parts:
        parts.append("free SEH place")
    if full and h.spared and group.cls == "T3":
        parts.append("nearest hospital, spared for self-referrers until the others were at their share")
    elif full and group.cls == "T1" and group.kind not in ABOVE_SHARE and h.within and rules.trauma_first and _can(h, "trauma_centre"):
        parts.append("above its share: T1 go to a trauma centre before an ordinary SEH")
    elif full:
        parts.append(ABOVE_SHARE.get(group.kind, "above its share: the others were at theirs"))
    if not h.within:
        parts.append(
            "beyond the norm: burns go to a burns centre" if group.kind == "burns" else "beyond the norm: nothing within could take them"
        )
    return "; ".join(parts)


def _place(group: _Group, hospitals: Sequence[_Hospital], *, full: bool, rules: Rules) -> None:
    """Nearest first: as many of the group as each hospital's places (and share, IC for T1) allow."""
    t1 = group.cls == "T1"
    for h in hospitals:
        if group.count == 0:
            return
        room = h.seh_left if full else min(h.seh_left, h.share_left)
        if t1:
            room = min(room, h.ic_left if full else min(h.ic_left, h.ic_share_left))
        n = min(room, group.count)
        if n <= 0:
            continue
        group.count -= n
        h.seh_left -= n
        h.share_left = max(0, h.share_left - n)
        if t1:
            h.ic_left -= n
            h.ic_share_left = max(0, h.ic_share_left - n)
        h.counts[group.cls] += n
        if group.kind in ("burns", "paediatric"):
            h.counts[group.kind] += n
        key = f"{group.cls}{LABELS[group.kind]}: {_reason(h, group, full=full, rules=rules)}"
        h.why[key] = h.why.get(key, 0) + n


def _candidates(group: _Group, hospitals: Sequence[_Hospital], *, within: bool, full: bool, rules: Rules) -> list[_Hospital]:
    """The hospitals this group may go to in this phase, in order of preference."""
    if group.kind == "paediatric":
        return [h for h in hospitals if h.within and _can(h, "paediatric_seh")]
    pool = [h for h in hospitals if h.within == within and not (h.spared and group.cls == "T3" and not full)]
    if group.cls == "T1" and within and rules.trauma_first:
        return [h for h in pool if _can(h, "trauma_centre")] + [h for h in pool if not _can(h, "trauma_centre")]
    return pool


def plan_incident(*, receiving: Sequence[Receiving], casualties: Casualties, rules: Rules = DEFAULT_RULES) -> Plan:
    """A proposed plan: placed plus unplaced equals the casualties of each class, always."""
    hospitals = _hospitals(receiving, rules)
    groups = _split_needs(casualties)
    unplaced_needs = {"burns": 0, "paediatric": 0}
    burns_centres = [h for h in hospitals if _can(h, "burns")]
    for full in (False, True):
        for cls in CLASSES:
            _place(groups[cls][0], burns_centres, full=full, rules=rules)
    for cls in CLASSES:
        burns, _, burns_fb, _, _ = groups[cls]
        burns_fb.count, burns.count = burns.count, 0
        unplaced_needs["burns"] += burns_fb.count
    for within in (True, False):
        for full in (False, True):
            for cls in CLASSES:
                _, children, burns_fb, children_fb, plain = groups[cls]
                if within and not full:
                    paediatric_seh = _candidates(children, hospitals, within=True, full=False, rules=rules)
                    _place(children, paediatric_seh, full=False, rules=rules)
                    _place(children, paediatric_seh, full=True, rules=rules)
                    children_fb.count, children.count = children.count, 0
                    unplaced_needs["paediatric"] += children_fb.count
                for group in (burns_fb, children_fb, plain):
                    pool = _candidates(group, hospitals, within=within, full=full, rules=rules)
                    if cls == "T1" and within and not full and rules.trauma_first:
                        trauma = [h for h in pool if _can(h, "trauma_centre")]
                        _place(group, trauma, full=False, rules=rules)
                        _place(group, trauma, full=True, rules=rules)  # a trauma centre above its share before an ordinary SEH
                    _place(group, pool, full=full, rules=rules)
    unplaced = {cls: sum(g.count for g in groups[cls]) for cls in CLASSES}
    lines = tuple(_line(h, rules) for h in hospitals if h.why)
    return Plan(lines=lines, unplaced=unplaced, unplaced_needs=unplaced_needs, rules=rules.version)


def _line(h: _Hospital, rules: Rules) -> PlanLine:
    r = h.r
    where = f"{r.travel_min:.0f} min, " + ("within" if h.within else "beyond") + f" the {rules.norm_min:.0f}-minute norm"
    c = h.counts
    return PlanLine(
        facility_id=r.facility_id,
        name=r.name,
        region_id=r.region_id,
        T1=c["T1"],
        T2=c["T2"],
        T3=c["T3"],
        burns=c["burns"],
        paediatric=c["paediatric"],
        travel_min=r.travel_min,
        within_norm=h.within,
        why=(where, *(f"{n} {key}" for key, n in h.why.items())),
    )
