""" "On stop" means one thing everywhere: a region's stop minutes, its alerts, the 45-minute
coverage and dispatch's ranking all agree on which SEH statuses take no ambulances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capacity.alerts.judge import judge_seh_on_stop
from capacity.alerts.models import SehOnStop
from capacity.board.models import RegionBoard
from capacity.board.service import facility_view, region_summary
from capacity.dispatch.service import Tier, judgement_of
from capacity.domain import ON_STOP, SehStatus, on_stop
from capacity.history.service import stop_periods
from capacity.state import FacilityLive, SehFigure, stop_mark
from regions.coverage import counts_as_open
from regions.registry import load_registry

REGISTRY = load_registry()
UMC_UTRECHT = REGISTRY.facilities["seh-tno-76"]
NOW = datetime.now(UTC)


def live_with(status: SehStatus) -> FacilityLive:
    stopping = status in (SehStatus.stop, SehStatus.closed, SehStatus.stop_expired)
    extra = {"reason": "crowding", "expected_until": NOW + timedelta(hours=1)} if stopping else {}
    seh = SehFigure(status=status, measured_at=NOW - timedelta(minutes=10), **extra)
    return FacilityLive(facility_id=UMC_UTRECHT.id, ts=int(seh.measured_at.timestamp() * 1000), seh=seh)


def in_history(status: SehStatus) -> bool:
    changes = [(NOW - timedelta(hours=1), {"status": status.value, "reason": "crowding"})]
    return bool(stop_periods(facility_id=UMC_UTRECHT.id, status_at_start=None, changes=changes, start=NOW - timedelta(hours=2), end=NOW))


def in_alerts(status: SehStatus) -> bool:
    state = facility_view(UMC_UTRECHT, live_with(status), NOW)
    board = RegionBoard(
        region=region_summary(REGISTRY.regions["ROAZ08"], REGISTRY), generated_at=NOW, last_event_id=None, facilities=[state]
    )
    return bool(judge_seh_on_stop(SehOnStop(type="seh_on_stop", count=1), board).holds)


def in_coverage(status: SehStatus) -> bool:
    return not counts_as_open(UMC_UTRECHT, status.value, NOW)


def in_dispatch(status: SehStatus) -> bool:
    judgement = judgement_of(
        facility=UMC_UTRECHT, live=live_with(status), need="seh", required=frozenset(), capabilities=frozenset(), now=NOW
    )
    assert judgement.suitable is (judgement.tier <= Tier.stale)
    return judgement.tier is Tier.declared


@pytest.mark.parametrize("status", list(SehStatus))
def test_history_alerts_coverage_and_dispatch_agree_on_what_is_on_stop(status):
    expected = status in (SehStatus.stop, SehStatus.closed, SehStatus.stop_expired)
    assert on_stop(status.value) is expected
    seen = {"history": in_history(status), "alerts": in_alerts(status), "coverage": in_coverage(status), "dispatch": in_dispatch(status)}
    assert seen == dict.fromkeys(seen, expected)
    assert (stop_mark(status.value, "t") == "t") is expected  # the live state marks when a stop began


def test_a_stop_that_closes_and_then_expires_is_one_stop_in_the_history():
    """stop → closed → stop_expired is one period of taking no ambulances, with the reason it began with."""
    start = NOW - timedelta(hours=3)
    changes = [
        (start + timedelta(minutes=10), {"status": "stop", "reason": "crowding"}),
        (start + timedelta(minutes=40), {"status": "closed", "reason": "staffing"}),
        (start + timedelta(minutes=70), {"status": "stop_expired", "reason": "staffing"}),
        (start + timedelta(minutes=100), {"status": "open"}),
    ]
    [period] = stop_periods(facility_id=UMC_UTRECHT.id, status_at_start=None, changes=changes, start=start, end=NOW)
    assert period.minutes == 90 and period.reason == "crowding" and not period.ongoing


def test_never_reported_is_not_on_stop():
    assert not on_stop(None) and ON_STOP == frozenset({"stop", "closed", "stop_expired"})
