"""This worker's replica of the live state: every region's facilities, holds and announcements.

Loaded from Redis in one atomic step per region (with the stream id it reflects), then kept
current by the stream reader, entry by entry in stream order, so the board, nearest, places,
coverage, alerts and the websocket snapshots are read from memory: no Redis round trip and no
JSON decoding per request. Writes still go only through the Lua scripts.

Two promises keep it honest:
- **Never stale without saying so.** A region not loaded, or a reader that has not heard from
  Redis for `max_silence_s`, makes every read raise `LiveStateUnavailable` (503): a board that
  looks live but is not is the worst failure this service can have.
- **Read your writes.** A report this worker applied is in its replica before a read answers:
  reads wait (briefly) until the replica has folded every event this worker wrote.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from capacity.errors import LiveStateUnavailable
from capacity.state import FacilityLive, digest_of, fold
from capacity.store.entries import (
    AnnouncementEntry,
    AnnouncementNotice,
    Entry,
    EventKey,
    RebuiltEntry,
    RegionSnapshot,
    ReportEntry,
    StaleEntry,
    event_key,
)

log = logging.getLogger(__name__)


@dataclass(eq=False)
class RegionLive:
    """One region as this worker knows it, up to (and including) stream entry `last_id`."""

    region_id: str
    facilities: dict[str, FacilityLive] = field(default_factory=dict)
    announcements: dict[str, AnnouncementNotice] = field(default_factory=dict)
    last_id: str = "0-0"
    last_key: EventKey = (0, 0)
    loaded: bool = False
    changes: int = 0
    """Bumped on every change: what cached views of the region compare against."""

    @property
    def last_event_id(self) -> str | None:
        return None if self.last_key == (0, 0) else self.last_id

    def facility(self, facility_id: str) -> FacilityLive:
        return self.facilities.get(facility_id) or FacilityLive(facility_id=facility_id)


class Replica:
    name = "replica"

    def __init__(self, *, region_ids: Iterable[str], max_silence_s: float = 5.0, catch_up_s: float = 1.0) -> None:
        self.regions: dict[str, RegionLive] = {r: RegionLive(region_id=r) for r in region_ids}
        self._max_silence_s = max_silence_s
        self._catch_up_s = catch_up_s
        self._heard_at: dict[str, float] = {}
        self._written: dict[str, EventKey] = {}
        self._waiters: dict[str, list[tuple[EventKey, asyncio.Future[None]]]] = {}

    # --- fed by the stream reader -------------------------------------------------------

    def heard(self, region_ids: Iterable[str] | None = None) -> None:
        """The reader heard from Redis just now about these regions (default: all), in an answer to
        its blocking read, empty or not. On a Cluster each region is read on its own, so one node
        that fails over makes only its own regions silent."""
        now = time.monotonic()
        for region_id in self.regions if region_ids is None else region_ids:
            self._heard_at[region_id] = now

    def load(self, snapshot: RegionSnapshot) -> None:
        region = self.regions.setdefault(snapshot.region_id, RegionLive(region_id=snapshot.region_id))
        region.facilities = dict(snapshot.facilities)
        region.announcements = dict(snapshot.announcements)
        region.last_id, region.last_key = snapshot.last_id, event_key(snapshot.last_id)
        region.loaded = True
        region.changes += 1
        self._wake(region)

    def unload(self, region_id: str) -> None:
        """The region was rebuilt: nothing is read from it until it is loaded again."""
        if (region := self.regions.get(region_id)) is not None:
            region.loaded = False
            region.changes += 1
            self._wake(region)

    def take(self, region_id: str, entries: Sequence[Entry]) -> None:
        region = self.regions.get(region_id)
        if region is None or not region.loaded:
            return
        for entry in entries:
            key = event_key(entry.id)
            if key <= region.last_key:
                continue  # already in the snapshot the region was loaded from
            if isinstance(entry, RebuiltEntry):
                self.unload(region_id)  # the reader loads it again; what follows is in that snapshot
                return
            if isinstance(entry, ReportEntry):
                body = entry.body
                digest = digest_of(entry.data)
                region.facilities[body.facility_id] = fold(region.facilities.get(body.facility_id), body, event_id=entry.id, digest=digest)
            elif isinstance(entry, AnnouncementEntry):
                self._announcement(region, entry.notice)
            elif isinstance(entry, StaleEntry):
                region.facilities[entry.facility_id] = region.facility(entry.facility_id).with_stale(entry.since)
            region.last_id, region.last_key = entry.id, key
        region.changes += 1
        self._wake(region)

    @staticmethod
    def _announcement(region: RegionLive, notice: AnnouncementNotice) -> None:
        """As announce.lua and release.lua change the hold counts."""
        active = notice.state == "active"
        if active:
            region.announcements[notice.id] = notice
        elif region.announcements.pop(notice.id, None) is None and notice.facility_id not in region.facilities:
            return
        region.facilities[notice.facility_id] = region.facility(notice.facility_id).with_hold(notice.need, 1 if active else -1)

    # --- read by everything else --------------------------------------------------------

    def loaded(self, region_id: str) -> bool:
        region = self.regions.get(region_id)
        return region is not None and region.loaded

    def current_for(self, region_id: str) -> bool:
        return time.monotonic() - self._heard_at.get(region_id, float("-inf")) <= self._max_silence_s

    def silent(self) -> list[str]:
        """The regions not heard from lately: their boards are told to reconnect."""
        return [region_id for region_id in self.regions if not self.current_for(region_id)]

    def region(self, region_id: str) -> RegionLive:
        """The region's live state, or LiveStateUnavailable when it cannot be vouched for."""
        region = self.regions.get(region_id)
        if region is None or not region.loaded:
            raise LiveStateUnavailable(f"the live state of region {region_id} is being loaded; retry shortly")
        if not self.current_for(region_id):
            raise LiveStateUnavailable("the live state (Redis) has not answered for a while; figures not shown as current")
        return region

    def statuses(self) -> Mapping[str, str | None]:
        """Every reported facility's SEH status, across the loaded regions (for coverage)."""
        return {
            facility_id: live.seh.status.value if live.seh else None
            for region in self.regions.values()
            if region.loaded
            for facility_id, live in region.facilities.items()
        }

    def last_event_ids(self, region_ids: Iterable[str]) -> dict[str, str | None]:
        return {r: self.regions[r].last_event_id for r in region_ids if r in self.regions}

    # --- read your writes ---------------------------------------------------------------

    def wrote(self, region_id: str, event_id: str) -> None:
        """This worker applied `event_id`: reads of the region wait until the replica has it."""
        key = event_key(event_id)
        if key > self._written.get(region_id, (0, 0)):
            self._written[region_id] = key

    async def caught_up(self, region_id: str) -> RegionLive:
        """The region once every event this worker wrote to it is folded in (waiting at most
        `catch_up_s`: a reader that falls behind for longer shows up as not current)."""
        region = self.region(region_id)
        written = self._written.get(region_id, (0, 0))
        if written > region.last_key:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(region_id, []).append((written, waiter))
            try:
                await asyncio.wait_for(asyncio.shield(waiter), self._catch_up_s)
            except TimeoutError:
                log.warning("replica of %s did not catch up with this worker's writes within %.1f s", region_id, self._catch_up_s)
        return self.region(region_id)

    async def all_caught_up(self, region_ids: Iterable[str]) -> None:
        for region_id in region_ids:
            if self._written.get(region_id, (0, 0)) > self.region(region_id).last_key:
                await self.caught_up(region_id)

    def _wake(self, region: RegionLive) -> None:
        waiting = self._waiters.get(region.region_id)
        if not waiting:
            return
        still = []
        for key, waiter in waiting:
            if key <= region.last_key or not region.loaded:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((key, waiter))
        self._waiters[region.region_id] = still
