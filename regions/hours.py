"""An SEH's declared opening hours: when it is open by design, in Dutch local time.

Some SEHs close at night by design (in Drenthe, for one, hospitals take turns keeping one SEH
open at night). A facility may declare its hours; outside them the service closes its SEH with
the reason `opening_hours` (capacity.reports.hours), and board, dispatch, alerts and coverage
follow from that. No declared hours: open around the clock, as before.

The text is OpenStreetMap's `opening_hours` syntax, the common standard for opening hours,
read and evaluated by the opening-hours-py library (our own code only checks what an SEH may
declare). Weekdays and times are local time (Europe/Amsterdam, so a daylight-saving change
moves the UTC instants, never the clock times); later rules override earlier ones for the days
they name, which gives exceptions by date; a time range past midnight runs into the next day:

    Mo-Fr 08:00-23:00; Sa,Su 10:00-18:00
    Mo-Su 08:00-22:00; 2026 Dec 24 08:00-14:00; 2026 Dec 25 off
    Mo-Su 00:00-24:00; We 20:00-24:00 off          (closed Wednesday evenings)
    Mo-Su 08:00-20:00; PH off                       (Dutch public holidays)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import overload

from opening_hours import (  # type: ignore[attr-defined]  # ParserError is exported, but missing from the package's stub
    OpeningHours,
    ParserError,
    State,
)

from capacity.domain import LOCAL_TIME

MAX_LENGTH = 500
LOOK_BACK = timedelta(days=32)
"""How far back the last change is looked for: a state unchanged for longer has no recent change
(a closure for a month of renovation is declared by date, and still found)."""

_NOT_FOR_AN_SEH = re.compile(r"unknown|sunrise|sunset|dawn|dusk|\"|\|\|", re.IGNORECASE)
"""Parts of the syntax an SEH's hours may not use: unknown states, comments and fallback rules
(an SEH is open or closed, never unknown), and times of the sun (they need a place's coordinates
and mean nothing for a hospital)."""


class HoursInvalid(ValueError):
    """Opening hours that cannot be read, or use what an SEH's hours may not."""


def _local(at: datetime) -> datetime:
    """The library wants a time zone with a key (a ZoneInfo): Dutch local time."""
    return at.astimezone(LOCAL_TIME)


@overload
def _utc(at: datetime) -> datetime: ...
@overload
def _utc(at: datetime | None) -> datetime | None: ...
def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


@dataclass(frozen=True, slots=True)
class SehHours:
    """Declared opening hours, compared by their text (the parsed form rides along)."""

    text: str
    parsed: OpeningHours = field(compare=False, hash=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> SehHours:
        """Read `text` (HoursInvalid saying what is wrong otherwise)."""
        text = " ".join(text.split())
        if not text:
            raise HoursInvalid("empty: leave the hours out for an SEH open around the clock")
        if len(text) > MAX_LENGTH:
            raise HoursInvalid(f"longer than {MAX_LENGTH} characters")
        if found := _NOT_FOR_AN_SEH.search(text):
            raise HoursInvalid(f"{found.group(0)!r} cannot be used: an SEH's hours say open or closed by weekday, time and date")
        try:
            parsed = OpeningHours(text, timezone=LOCAL_TIME, country="NL")
        except (ParserError, SyntaxError, ValueError) as exc:
            first = str(exc).strip().splitlines()[-1].lstrip("= ").strip() if str(exc).strip() else "not understood"
            raise HoursInvalid(
                f"not OpenStreetMap opening_hours syntax ({first}); e.g. 'Mo-Fr 08:00-23:00; Sa,Su 10:00-18:00; 2026 Dec 25 off'"
            ) from exc
        return cls(text=text, parsed=parsed)

    def open_at(self, at: datetime) -> bool:
        return bool(self.parsed.is_open(_local(at)))

    def next_change(self, at: datetime) -> datetime | None:
        """When the state at `at` next changes (None: not within the library's horizon)."""
        return _utc(self.parsed.next_change(_local(at)))

    def last_change(self, at: datetime) -> datetime | None:
        """When the state at `at` began (None: unchanged for LOOK_BACK or longer)."""
        began: datetime | None = None
        state_then = None
        for start, end, state, _ in self.parsed.intervals(_local(at - LOOK_BACK), _local(at + timedelta(seconds=1))):
            if state != state_then:  # the library may cut one state into several stretches
                began, state_then = start, state
            if end > _local(at):
                break
        if began is None or _utc(began) <= at - LOOK_BACK:
            return None
        return _utc(began)

    def intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, bool]]:
        """The open and closed stretches between `start` and `end`, in UTC."""
        return [(_utc(a), _utc(b), s == State.OPEN) for a, b, s, _ in self.parsed.intervals(_local(start), _local(end))]

    def __str__(self) -> str:
        return self.text


def parse_hours(text: str | None) -> SehHours | None:
    """Hours from a file's column or a request: empty means none declared (open around the clock)."""
    if text is None or not text.strip():
        return None
    return SehHours.parse(text)
