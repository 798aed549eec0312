"""Decoding what Redis holds, once, into typed values: stream entries, facility hashes, snapshots.

The stream reader decodes each entry here and nowhere else. An entry that cannot be read
(bad JSON, a missing or wrong field, a kind this version does not know) becomes a `Skipped`
with the reason: the reader counts and logs it, and every consumer goes on with the next
entry. One bad entry must never silence a region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from capacity.state import EventBody, FacilityLive
from capacity.store.keys import (
    ALERT_FIELD,
    ANNOUNCEMENT_FIELD,
    COVERAGE_FIELD,
    DIGEST_FIELD,
    EVENT_FIELD,
    EVENT_ID_FIELD,
    FACILITY_FIELD,
    HASH_FIELDS,
    HOLD_PREFIX,
    RESET_FIELD,
    SEH_FIELD,
    STALE_FIELD,
    STALE_SINCE_FIELD,
    STOP_SINCE_FIELD,
    TS_FIELD,
    UNIT_PREFIX,
)

EventKey = tuple[int, int]


def event_key(event_id: str) -> EventKey:
    """Stream ids order as (milliseconds, sequence)."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class AnnouncementNotice(BaseModel):
    """An announcement as the stream and its hash carry it: an active one in full, an ended one
    by its id, facility, need and how it ended."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=40)
    state: Literal["active", "arrived", "cancelled", "expired"]
    facility_id: str = Field(min_length=1, max_length=64)
    need: str = Field(min_length=1, max_length=20)
    eta: datetime | None = None
    urgency: str | None = None
    category: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None

    @field_validator("urgency", "category", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None  # the hash and the stream write a missing category as ""


class _Notice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class AlertNotice(_Notice):
    subscription_id: str = Field(min_length=1)
    key_id: str = Field(min_length=1)
    state: Literal["firing", "cleared"]


class StaleNotice(_Notice):
    kind: Literal["stale"]
    facility_id: str = Field(min_length=1, max_length=64)
    since: datetime


class CoverageNotice(_Notice):
    kind: Literal["coverage"]


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """`e`: a report as applied. `raw` is its JSON as stored, sent to websocket clients as is;
    `data` the same parsed once, as the SQL record keeps it and its digest is computed from."""

    id: str
    body: EventBody
    raw: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AnnouncementEntry:
    """`a`: an announcement's hold began or ended."""

    id: str
    notice: AnnouncementNotice
    raw: str


@dataclass(frozen=True, slots=True)
class AlertEntry:
    """`al`: an alert for one key's subscription (only that key's sockets are told)."""

    id: str
    notice: AlertNotice
    raw: str


@dataclass(frozen=True, slots=True)
class StaleEntry:
    """`k`: a facility's figures went stale."""

    id: str
    facility_id: str
    since: datetime
    raw: str


@dataclass(frozen=True, slots=True)
class CoverageEntry:
    """`c`: the region's 45-minute coverage changed."""

    id: str
    raw: str


@dataclass(frozen=True, slots=True)
class RebuiltEntry:
    """`r`: the region's live state was rebuilt from the SQL record."""

    id: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry that cannot be read: counted, logged once, passed over by everyone."""

    id: str
    reason: str


Entry = ReportEntry | AnnouncementEntry | AlertEntry | StaleEntry | CoverageEntry | RebuiltEntry | Skipped


def decode_entry(region_id: str, entry_id: str, fields: Mapping[str, str]) -> Entry:
    """One stream entry of `region_id` as a typed value, or `Skipped` saying why not."""
    try:
        if EVENT_FIELD in fields:
            raw = fields[EVENT_FIELD]
            data = orjson.loads(raw)
            body = EventBody.model_validate(data)
            if body.region_id != region_id or fields.get(FACILITY_FIELD, body.facility_id) != body.facility_id:
                return Skipped(entry_id, "event of another region or facility")
            return ReportEntry(entry_id, body, raw, data)
        if ANNOUNCEMENT_FIELD in fields:
            raw = fields[ANNOUNCEMENT_FIELD]
            return AnnouncementEntry(entry_id, AnnouncementNotice.model_validate_json(raw), raw)
        if ALERT_FIELD in fields:
            raw = fields[ALERT_FIELD]
            return AlertEntry(entry_id, AlertNotice.model_validate_json(raw), raw)
        if STALE_FIELD in fields:
            raw = fields[STALE_FIELD]
            stale = StaleNotice.model_validate_json(raw)
            return StaleEntry(entry_id, stale.facility_id, stale.since, raw)
        if COVERAGE_FIELD in fields:
            raw = fields[COVERAGE_FIELD]
            CoverageNotice.model_validate_json(raw)
            return CoverageEntry(entry_id, raw)
        if RESET_FIELD in fields:
            return RebuiltEntry(entry_id)
    except (ValidationError, orjson.JSONDecodeError) as exc:
        kind = next(name for name in (EVENT_FIELD, ANNOUNCEMENT_FIELD, ALERT_FIELD, STALE_FIELD, COVERAGE_FIELD) if name in fields)
        why = exc.errors(include_url=False)[0]["type"] if isinstance(exc, ValidationError) else "json_invalid"
        return Skipped(entry_id, f"unreadable {kind!r} entry ({why})")
    return Skipped(entry_id, "unknown kind of entry")


def state_from_hash(stored: Mapping[str, str]) -> dict[str, Any]:
    """A facility hash (as the apply scripts write it) as the SQL record keeps it with an event."""
    units = {name[len(UNIT_PREFIX) :]: orjson.loads(value) for name, value in stored.items() if name.startswith(UNIT_PREFIX)}
    state: dict[str, Any] = {
        "ts": int(stored[TS_FIELD]),
        "digest": stored[DIGEST_FIELD],
        "event_id": stored[EVENT_ID_FIELD],
        "seh": orjson.loads(stored[SEH_FIELD]) if SEH_FIELD in stored else None,
        "units": dict(sorted(units.items())),
    }
    for part, name in HASH_FIELDS.items():
        if name in stored:
            state[part] = orjson.loads(stored[name])
    if STOP_SINCE_FIELD in stored:
        state["stop_since"] = stored[STOP_SINCE_FIELD]
    return state


def hash_from_state(state: Mapping[str, Any]) -> dict[str, str]:
    """The inverse of `state_from_hash`: what a rebuild writes back."""
    stored = {TS_FIELD: str(state["ts"]), DIGEST_FIELD: state["digest"], EVENT_ID_FIELD: state["event_id"]}
    if state.get("seh") is not None:
        stored[SEH_FIELD] = orjson.dumps(state["seh"]).decode()
    for unit_type, figures in state.get("units", {}).items():
        stored[UNIT_PREFIX + unit_type] = orjson.dumps(figures).decode()
    for part, name in HASH_FIELDS.items():
        if state.get(part) is not None:
            stored[name] = orjson.dumps(state[part]).decode()
    if state.get("stop_since"):
        stored[STOP_SINCE_FIELD] = state["stop_since"]
    return stored


def holds_in(stored: Mapping[str, str]) -> dict[str, int]:
    """The places held per need, from a facility hash."""
    return {name[len(HOLD_PREFIX) :]: int(value) for name, value in stored.items() if name.startswith(HOLD_PREFIX) and int(value) > 0}


def facility_from_hash(facility_id: str, stored: Mapping[str, str]) -> FacilityLive:
    """A facility hash as the typed live state (a hash with holds but no report yet has ts 0).
    Raises ValueError (a pydantic ValidationError) for a hash that cannot be read."""
    holds = MappingProxyType(holds_in(stored))
    stale = datetime.fromisoformat(stored[STALE_SINCE_FIELD]) if stored.get(STALE_SINCE_FIELD) else None
    if TS_FIELD not in stored:
        return FacilityLive(facility_id=facility_id, holds=holds, stale_since=stale)
    return replace(FacilityLive.from_record(facility_id, state_from_hash(stored)), holds=holds, stale_since=stale)


@dataclass(frozen=True, slots=True)
class RegionSnapshot:
    """A region's live state and the stream id it reflects (snapshot.lua reads it in one step)."""

    region_id: str
    last_id: str
    ready: bool
    facilities: Mapping[str, FacilityLive]
    announcements: Mapping[str, AnnouncementNotice]
    unreadable: tuple[tuple[str, str], ...] = ()
    """(`facility` or `announcement`, its id) for each hash that could not be read (left out)."""


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def announcement_from_hash(announcement_id: str, stored: Mapping[str, str]) -> AnnouncementNotice:
    fields = {k: v for k, v in stored.items() if v != ""}
    return AnnouncementNotice.model_validate({"id": announcement_id, "state": "active", **fields})


def decode_snapshot(region_id: str, answer: Sequence[Any]) -> RegionSnapshot:
    """snapshot.lua's answer as typed values; a hash that cannot be read is left out and named."""
    last_id, ready, *rest = answer
    split = rest.index("|")
    facilities: dict[str, FacilityLive] = {}
    announcements: dict[str, AnnouncementNotice] = {}
    unreadable: list[tuple[str, str]] = []
    for facility_id, flat in zip(rest[:split:2], rest[1:split:2], strict=True):
        try:
            facilities[facility_id] = facility_from_hash(facility_id, _pairs(flat))
        except (ValueError, KeyError, orjson.JSONDecodeError):
            unreadable.append(("facility", facility_id))
    after = rest[split + 1 :]
    for announcement_id, flat in zip(after[::2], after[1::2], strict=True):
        try:
            notice = announcement_from_hash(announcement_id, _pairs(flat))
        except ValueError:
            unreadable.append(("announcement", announcement_id))
            continue
        if notice.state == "active":
            announcements[announcement_id] = notice
    return RegionSnapshot(
        region_id=region_id,
        last_id=last_id or "0-0",
        ready=bool(ready),
        facilities=MappingProxyType(facilities),
        announcements=MappingProxyType(announcements),
        unreadable=tuple(unreadable),
    )
