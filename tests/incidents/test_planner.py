"""The incident planner: hand-made cases for each rule, and properties over random hospitals and counts."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity.domain import on_stop
from capacity.incidents.planner import Casualties, Plan, PlanLine, Receiving, plan_incident
from capacity.incidents.rules import CLASSES, DEFAULT_RULES, RULES_VERSION, SOURCES, Rules

NORM = DEFAULT_RULES.norm_min


def hospital(
    fid: str,
    minutes: float,
    *,
    seh: int | None = 10,
    ic: int | None = 4,
    status: str | None = "open",
    caps: Sequence[str] = (),
    stops: Sequence[str] = (),
    region: str = "ROAZ01",
) -> Receiving:
    return Receiving(fid, f"Hospital {fid}", region, float(minutes), status, seh, ic, frozenset(caps), frozenset(stops))


def by_id(plan: Plan) -> dict[str, PlanLine]:
    return {line.facility_id: line for line in plan.lines}


def placed(plan: Plan, cls: str) -> int:
    return sum(getattr(line, cls) for line in plan.lines)


def words(line: PlanLine) -> str:
    return " | ".join(line.why)


# ---- hand-made cases -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["stop", "closed", "stop_expired", None])
def test_an_seh_on_stop_or_never_reported_is_skipped(status: str | None) -> None:
    plan = plan_incident(receiving=[hospital("near", 5, status=status), hospital("far", 20)], casualties=Casualties(T1=1, T2=2, T3=1))
    assert set(by_id(plan)) == {"far"}
    assert by_id(plan)["far"].T2 == 2


def test_busy_seh_takes_casualties() -> None:
    plan = plan_incident(receiving=[hospital("busy", 5, status="busy")], casualties=Casualties(T1=0, T2=1, T3=0))
    assert by_id(plan)["busy"].T2 == 1


def test_ic_limits_t1_and_unknown_ic_takes_none() -> None:
    receiving = [hospital("a", 5, seh=10, ic=1), hospital("b", 10, seh=10, ic=None), hospital("c", 15, seh=10, ic=0)]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=3, T2=0, T3=0))
    assert by_id(plan)["a"].T1 == 1
    assert set(by_id(plan)) == {"a"}
    assert plan.unplaced == {"T1": 2, "T2": 0, "T3": 0}


def test_t1_prefers_a_trauma_centre_within_the_norm() -> None:
    receiving = [hospital("near", 5), hospital("trauma", 30, caps=["trauma_centre"])]
    line = by_id(plan_incident(receiving=receiving, casualties=Casualties(T1=1, T2=0, T3=0)))["trauma"]
    assert line.T1 == 1
    assert "trauma centre with a free IC bed" in words(line)


def test_t1_fill_a_trauma_centre_above_its_share_before_an_ordinary_seh() -> None:
    receiving = [hospital("near", 5), hospital("trauma", 30, seh=10, ic=4, caps=["trauma_centre"])]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=5, T2=0, T3=0))
    assert (by_id(plan)["trauma"].T1, by_id(plan)["near"].T1) == (4, 1)
    assert "above its share: T1 go to a trauma centre before an ordinary SEH" in words(by_id(plan)["trauma"])


def test_t1_at_a_trauma_centre_on_trauma_stop_is_not_preferred() -> None:
    receiving = [hospital("near", 5), hospital("trauma", 30, caps=["trauma_centre"], stops=["trauma_centre"])]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=1, T2=0, T3=0))
    assert by_id(plan)["near"].T1 == 1
    assert "no trauma centre within the norm could take them" in words(by_id(plan)["near"])


def test_t1_stays_within_the_norm_rather_than_a_trauma_centre_beyond() -> None:
    receiving = [hospital("near", 10), hospital("trauma", 60, caps=["trauma_centre"])]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=1, T2=0, T3=0))
    assert set(by_id(plan)) == {"near"}


def test_burns_go_to_the_burns_centre_even_if_farther() -> None:
    receiving = [hospital("near", 5), hospital("burns", 80, caps=["burns"])]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=2, T3=0, burns=1))
    burns = by_id(plan)["burns"]
    assert (burns.T2, burns.burns, burns.within_norm) == (1, 1, False)
    assert "burns centre" in words(burns)
    assert by_id(plan)["near"].T2 == 1
    assert plan.unplaced_needs == {"burns": 0, "paediatric": 0}


def test_burns_centre_on_burns_stop_sends_burns_to_an_ordinary_seh_and_says_so() -> None:
    receiving = [hospital("near", 5), hospital("burns", 20, caps=["burns"], stops=["burns"])]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=1, T3=0, burns=1))
    assert sum(line.burns for line in plan.lines) == 0
    assert plan.unplaced_needs["burns"] == 1
    assert placed(plan, "T2") == 1
    assert any("no burns centre could take them" in words(line) for line in plan.lines)


def test_children_go_to_a_paediatric_seh_within_reach() -> None:
    receiving = [hospital("near", 5), hospital("kids", 25, caps=["paediatric_seh"])]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=1, T3=0, paediatric=1))
    assert by_id(plan)["kids"].paediatric == 1
    assert "paediatric SEH" in words(by_id(plan)["kids"])


def test_children_go_to_an_ordinary_seh_when_no_paediatric_seh_is_within_reach() -> None:
    receiving = [hospital("near", 5), hospital("kids", 70, caps=["paediatric_seh"])]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=1, T3=0, paediatric=1))
    assert set(by_id(plan)) == {"near"}
    assert plan.unplaced_needs["paediatric"] == 1
    assert "no paediatric SEH within reach could take them" in words(by_id(plan)["near"])


def test_needs_are_the_most_severe_casualties_burns_first() -> None:
    receiving = [hospital("burns", 10, caps=["burns"]), hospital("kids", 12, caps=["paediatric_seh"]), hospital("other", 14)]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=1, T2=1, T3=1, burns=1, paediatric=1))
    assert (by_id(plan)["burns"].T1, by_id(plan)["burns"].burns) == (1, 1)
    assert (by_id(plan)["kids"].T2, by_id(plan)["kids"].paediatric) == (1, 1)


def test_ten_equal_hospitals_share_ten_t3_and_the_nearest_is_spared() -> None:
    receiving = [hospital(f"h{i}", 10 + i) for i in range(10)]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=0, T3=10))
    lines = by_id(plan)
    assert max(line.T3 for line in plan.lines) <= 5  # the share: half of 10 free places
    assert len(plan.lines) >= 2
    assert "h0" not in lines  # spared for the self-referrers
    assert placed(plan, "T3") == 10


def test_above_the_share_only_when_every_share_is_used() -> None:
    receiving = [hospital("a", 5, seh=4), hospital("b", 10, seh=4)]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=7, T3=0))
    assert (by_id(plan)["a"].T2, by_id(plan)["b"].T2) == (4, 3)
    assert "above its share" in words(by_id(plan)["a"])


def test_beyond_the_norm_only_when_nothing_within_can_take_them() -> None:
    receiving = [hospital("within", 30, seh=2), hospital("beyond", 50, seh=10)]
    two = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=2, T3=0))
    assert set(by_id(two)) == {"within"}
    four = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=4, T3=0))
    assert (by_id(four)["within"].T2, by_id(four)["beyond"].T2) == (2, 2)
    assert not by_id(four)["beyond"].within_norm
    assert "beyond the norm: nothing within could take them" in words(by_id(four)["beyond"])


def test_exactly_at_the_norm_counts_as_within() -> None:
    plan = plan_incident(receiving=[hospital("edge", NORM)], casualties=Casualties(T1=0, T2=1, T3=0))
    assert by_id(plan)["edge"].within_norm


def test_unknown_minutes_count_as_beyond_the_norm_and_last() -> None:
    receiving = [hospital("nan", float("nan"), seh=1), hospital("inf", float("inf"), seh=1), hospital("far", 80, seh=1)]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=3, T3=0))
    assert [line.facility_id for line in plan.lines] == ["far", "inf", "nan"]
    assert not any(line.within_norm for line in plan.lines)


def test_unknown_free_places_are_not_used() -> None:
    receiving = [hospital("a", 5, seh=None), hospital("b", 6, seh=0), hospital("c", 7, seh=-1)]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=1, T2=2, T3=3))
    assert plan.lines == ()
    assert plan.unplaced == {"T1": 1, "T2": 2, "T3": 3}


def test_zero_casualties_of_a_class_and_none_at_all() -> None:
    plan = plan_incident(receiving=[hospital("a", 5), hospital("b", 8)], casualties=Casualties(T1=0, T2=0, T3=3))
    assert placed(plan, "T1") == placed(plan, "T2") == 0
    assert placed(plan, "T3") == 3
    empty = plan_incident(receiving=[hospital("a", 5)], casualties=Casualties(T1=0, T2=0, T3=0))
    assert empty.lines == ()
    assert empty.unplaced == {"T1": 0, "T2": 0, "T3": 0}
    assert empty.rules == RULES_VERSION


def test_most_severe_go_nearest() -> None:
    receiving = [hospital(f"h{i}", 5 + 5 * i, seh=2, ic=2) for i in range(6)]
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=1, T2=1, T3=1), rules=Rules(spare_nearest=False))
    lines = by_id(plan)
    assert (lines["h0"].T1, lines["h1"].T2, lines["h2"].T3) == (1, 1, 1)


def test_every_line_says_its_travel_time_and_norm_first() -> None:
    plan = plan_incident(receiving=[hospital("a", 12.4)], casualties=Casualties(T1=0, T2=1, T3=0))
    assert plan.lines[0].why[0] == "12 min, within the 45-minute norm"
    assert plan.lines[0].why[1] == "1 T2: free SEH place"


def test_bad_casualties_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Casualties(T1=-1, T2=0, T3=0)
    with pytest.raises(ValueError, match="outnumber"):
        Casualties(T1=1, T2=0, T3=0, burns=1, paediatric=1)


def test_every_source_has_a_url_and_title() -> None:
    assert all(url.startswith("https://") and title for _, url, title in SOURCES)


# ---- properties ------------------------------------------------------------------------------

CAPS = ("trauma_centre", "burns", "paediatric_seh", "pci")
STATUSES = ("open", "open", "open", "busy", None, "stop", "closed", "stop_expired")
"""Weighted towards usable SEHs, so that most examples plan something."""
MINUTES = (5.0, 12.0, 20.0, 30.0, 44.5, 45.0, 45.5, 60.0, 90.0)
"""Few values, so ties happen (broken by facility id) and the norm's edge is crossed often."""
PROPERTIES = settings(max_examples=200, deadline=None, database=None)


CAPABILITIES = st.tuples(*(st.booleans() for _ in CAPS)).map(lambda has: frozenset(c for c, yes in zip(CAPS, has, strict=True) if yes))
"""Each capability one time in two, so trauma centres, burns centres and paediatric SEHs are common."""
CAPABILITY_STOPS = st.sampled_from((frozenset(),) * 4 + tuple(frozenset({c}) for c in CAPS))
"""Now and then one capability on stop."""


def maybe(counts: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    """A count, unknown (None) one time in eight."""
    return st.tuples(st.integers(0, 7), counts).map(lambda pair: None if pair[0] == 0 else pair[1])


@st.composite
def receivings(draw: st.DrawFn) -> list[Receiving]:
    ids = draw(st.lists(st.integers(0, 99), min_size=1, max_size=14, unique=True))
    return [
        Receiving(
            facility_id=f"f{i:02d}",
            name=f"F{i}",
            region_id=draw(st.sampled_from(("ROAZ01", "ROAZ02"))),
            travel_min=draw(st.sampled_from(MINUTES)),
            seh_status=draw(st.sampled_from(STATUSES)),
            seh_free=draw(maybe(st.integers(-1, 12))),
            ic_free=draw(maybe(st.integers(-1, 6))),
            capabilities=draw(CAPABILITIES),
            capability_stops=draw(CAPABILITY_STOPS),
        )
        for i in ids
    ]


@st.composite
def casualty_counts(draw: st.DrawFn) -> Casualties:
    t1, t2, t3 = draw(st.integers(0, 30)), draw(st.integers(0, 40)), draw(st.integers(0, 60))
    burns = draw(st.integers(0, min(6, t1 + t2 + t3)))  # few, as in real incidents: most T1 stay plain
    paediatric = draw(st.integers(0, min(8, t1 + t2 + t3 - burns)))
    return Casualties(T1=t1, T2=t2, T3=t3, burns=burns, paediatric=paediatric)


def usable_cap(r: Receiving, capability: str) -> bool:
    return capability in r.capabilities and capability not in r.capability_stops


@PROPERTIES
@given(receiving=receivings(), casualties=casualty_counts())
def test_placed_plus_unplaced_is_the_casualties(receiving: list[Receiving], casualties: Casualties) -> None:
    plan = plan_incident(receiving=receiving, casualties=casualties)
    for cls in CLASSES:
        assert placed(plan, cls) + plan.unplaced[cls] == getattr(casualties, cls)
        assert plan.unplaced[cls] >= 0
    for need in ("burns", "paediatric"):
        assert placed(plan, need) + plan.unplaced_needs[need] == getattr(casualties, need)
    assert all(line.T1 + line.T2 + line.T3 > 0 for line in plan.lines)
    assert all(line.burns + line.paediatric <= line.T1 + line.T2 + line.T3 for line in plan.lines)


@PROPERTIES
@given(receiving=receivings(), casualties=casualty_counts())
def test_never_at_a_stopped_or_unknown_seh_nor_beyond_its_free_places(receiving: list[Receiving], casualties: Casualties) -> None:
    plan = plan_incident(receiving=receiving, casualties=casualties)
    known = {r.facility_id: r for r in receiving}
    for line in plan.lines:
        r = known[line.facility_id]
        assert r.seh_status is not None and not on_stop(r.seh_status)
        assert r.seh_free is not None and line.T1 + line.T2 + line.T3 <= r.seh_free
        if line.T1:
            assert r.ic_free is not None and line.T1 <= r.ic_free
        assert line.within_norm == (r.travel_min <= NORM)
        assert (line.name, line.region_id, line.travel_min) == (r.name, r.region_id, r.travel_min)


@PROPERTIES
@given(receiving=receivings(), casualties=casualty_counts())
def test_needs_only_where_the_capability_exists_and_is_not_on_stop(receiving: list[Receiving], casualties: Casualties) -> None:
    plan = plan_incident(receiving=receiving, casualties=casualties)
    known = {r.facility_id: r for r in receiving}
    for line in plan.lines:
        r = known[line.facility_id]
        if line.burns:
            assert usable_cap(r, "burns")
        if line.paediatric:
            assert usable_cap(r, "paediatric_seh") and line.within_norm


def room_for(r: Receiving, line: PlanLine | None, cls: str) -> bool:
    """Whether a usable hospital had a place left for one more casualty of this class."""
    if r.seh_status is None or on_stop(r.seh_status) or r.seh_free is None:
        return False
    used = (line.T1 + line.T2 + line.T3) if line else 0
    if used >= r.seh_free:
        return False
    return cls != "T1" or (r.ic_free is not None and (line.T1 if line else 0) < r.ic_free)


@PROPERTIES
@given(receiving=receivings(), casualties=casualty_counts())
def test_within_the_norm_before_beyond_it(receiving: list[Receiving], casualties: Casualties) -> None:
    plan = plan_incident(receiving=receiving, casualties=casualties)
    lines = by_id(plan)
    for cls in CLASSES:
        # burns at a burns centre go there at any distance; every other casualty beyond the norm
        # means no hospital within the norm had room for one of its class
        beyond = [line for line in plan.lines if not line.within_norm and getattr(line, cls) and not line.burns]
        if beyond:
            within = [r for r in receiving if r.travel_min <= NORM]
            assert not any(room_for(r, lines.get(r.facility_id), cls) for r in within), cls
        if plan.unplaced[cls]:
            assert not any(room_for(r, lines.get(r.facility_id), cls) for r in receiving), cls


@PROPERTIES
@given(receiving=receivings(), t1=st.integers(1, 20), t2=st.integers(0, 20), t3=st.integers(0, 20))
def test_t1_at_an_ordinary_seh_only_when_no_trauma_centre_within_the_norm_could_take_them(
    receiving: list[Receiving], t1: int, t2: int, t3: int
) -> None:
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=t1, T2=t2, T3=t3))  # no needs: every T1 plain
    lines = by_id(plan)
    known = {r.facility_id: r for r in receiving}
    ordinary = [
        line
        for line in plan.lines
        if line.within_norm
        and line.T1
        and not line.burns
        and not line.paediatric
        and not usable_cap(known[line.facility_id], "trauma_centre")
    ]
    if ordinary:
        trauma = [r for r in receiving if r.travel_min <= NORM and usable_cap(r, "trauma_centre")]
        assert not any(room_before_t2(r, lines.get(r.facility_id)) for r in trauma)


def room_before_t2(r: Receiving, line: PlanLine | None) -> bool:
    """Whether a trauma centre had room for one more T1 before any T2 or T3 was placed: T1 are placed
    before T2 and T3, after the burns (of any class), so at most its T1 and burns used it by then."""
    if r.seh_status is None or on_stop(r.seh_status) or r.seh_free is None or r.ic_free is None:
        return False
    t1, burns = (line.T1, line.burns) if line else (0, 0)
    return r.seh_free - t1 - burns > 0 and r.ic_free - t1 > 0


@PROPERTIES
@given(receiving=receivings(), casualties=casualty_counts(), seed=st.randoms(use_true_random=False))
def test_same_input_same_plan_whatever_the_order(receiving: list[Receiving], casualties: Casualties, seed: random.Random) -> None:
    shuffled = list(receiving)
    seed.shuffle(shuffled)
    first = plan_incident(receiving=receiving, casualties=casualties)
    assert plan_incident(receiving=receiving, casualties=casualties) == first
    assert plan_incident(receiving=shuffled, casualties=casualties) == first


@PROPERTIES
@given(receiving=receivings(), t2=st.integers(0, 40), t3=st.integers(0, 60))
def test_no_hospital_above_its_share_while_another_within_the_norm_is_below_its_own(receiving: list[Receiving], t2: int, t3: int) -> None:
    rules = Rules(spare_nearest=False)
    plan = plan_incident(receiving=receiving, casualties=Casualties(T1=0, T2=t2, T3=t3), rules=rules)
    lines = by_id(plan)

    def share(r: Receiving) -> int:
        return max(rules.share_min, int((r.seh_free or 0) * rules.share_fraction))

    def taken(r: Receiving) -> int:
        line = lines.get(r.facility_id)
        return line.T2 + line.T3 if line else 0

    within = [r for r in receiving if r.travel_min <= NORM and room_for(r, None, "T3")]
    if any(taken(r) > share(r) for r in within):
        assert all(taken(r) >= share(r) for r in within)
