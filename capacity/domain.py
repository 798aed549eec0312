"""Domain vocabulary shared by every part: unit types, SEH statuses, roles."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

LOCAL_TIME = ZoneInfo("Europe/Amsterdam")
"""Dutch clock time, for words people read ("until 14:30") and for local days."""


EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)
"""Times outside these bounds are refused: a day or a time zone away from the calendar's ends
(0001-01-01, 9999-12-31) a time cannot be counted with or written in UTC, which would turn a
client's mistake into a 500."""


def utc_iso(value: datetime) -> str:
    """The one way times are written in events and messages: UTC, ISO 8601, with Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class UnitType(StrEnum):
    """A bed category at a facility."""

    seh_places = "seh_places"
    ic_adult = "ic_adult"
    nicu = "nicu"
    picu = "picu"
    medium_care = "medium_care"
    ccu = "ccu"
    stroke = "stroke"
    ward_general = "ward_general"
    paediatrics = "paediatrics"
    obstetrics = "obstetrics"
    elv = "elv"
    grz = "grz"
    psychiatry = "psychiatry"


class SehStatus(StrEnum):
    """SEH status. `stop_expired` is set by the system, never sent by a facility."""

    open = "open"
    busy = "busy"
    stop = "stop"
    closed = "closed"
    stop_expired = "stop_expired"


REPORTABLE_SEH_STATUSES = (SehStatus.open, SehStatus.busy, SehStatus.stop, SehStatus.closed)

ON_STOP = frozenset({SehStatus.stop, SehStatus.closed, SehStatus.stop_expired})
"""**On stop**: the SEH takes no ambulances now. The one definition, used by the history's stop
minutes, the alerts, coverage and dispatch alike: a stop, a closure (whatever its reason, the
opening hours included) and a stop whose expected end passed unconfirmed. A stop runs from the
report that set it through any change among these three."""


def on_stop(status: str | None) -> bool:
    """Whether an SEH with this status (None: never reported) is on stop, i.e. takes no ambulances."""
    return status is not None and status in ON_STOP


class StopReason(StrEnum):
    """Why an SEH (or one capability) is on stop or closed; `other` needs a few words of text."""

    crowding = "crowding"
    no_ic_bed = "no_ic_bed"
    staffing = "staffing"
    equipment = "equipment"
    ict_failure = "ict_failure"
    calamity = "calamity"
    other = "other"


OPENING_HOURS = "opening_hours"
"""The reason of a closure the service makes itself from the SEH's declared opening hours: never
sent by a facility (as `stop_expired` is a status only the service sets)."""


NEDOCS_BANDS = (
    (20, "not_busy"),
    (60, "busy"),
    (100, "extremely_busy"),
    (140, "overcrowded"),
    (180, "severely_overcrowded"),
    (200, "dangerously_overcrowded"),
)
"""NEDOCS (National Emergency Department Overcrowding Scale, 0–200) and its published bands,
upper bounds inclusive: Weiss et al., Acad Emerg Med 2004;11(1):38–50."""


def nedocs_band(score: int) -> str:
    return next(band for upper, band in NEDOCS_BANDS if score <= upper)


class Role(StrEnum):
    facility = "facility"
    dispatch = "dispatch"
    viewer = "viewer"
    coordinator = "coordinator"
    admin = "admin"


class Capability(StrEnum):
    """What a facility can treat; dispatch may require one or more."""

    trauma_centre = "trauma_centre"
    pci = "pci"
    stroke_thrombectomy = "stroke_thrombectomy"
    acute_obstetrics = "acute_obstetrics"
    paediatric_seh = "paediatric_seh"
    burns = "burns"
