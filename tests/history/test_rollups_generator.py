"""The rollups benchmark folds its generated year with numpy instead of `insert_events`
(bench/rollups_data.py): its rows must be the ones the service's own fold makes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bench.rollups_data import PER_HOUR, STOP, simulate
from bench.rollups_queries import recorded_differences
from capacity.config import Settings
from capacity.db import Database
from capacity.migrate import upgrade
from regions.registry import load_registry

DST_END_2026 = int(datetime(2026, 10, 24, 0, tzinfo=UTC).timestamp() // 3600)
"""Three days around the night the clocks go back (2026-10-25), whole UTC hours."""


async def test_generated_rollups_are_what_insert_events_folds(database_url: str) -> None:
    url = Settings(database_url=database_url).sqlalchemy_url()
    await asyncio.to_thread(upgrade, url)
    registry = load_registry()
    facilities = [registry.facilities["seh-tno-05"], registry.facilities["seh-tno-06"]]  # without and with an SEH
    walks = [simulate(f, first_hour=DST_END_2026, hours=72, seed=seed) for seed, f in enumerate(facilities)]
    seh = walks[1]
    seh.status[5:40] = STOP  # begins before the compared span: counted from its start
    seh.reason[5:40] = 1
    seh.status[280:300] = STOP  # across local midnight and an hour's end
    seh.reason[280:300] = 2
    seh.status[-7:] = STOP  # still going at the end
    seh.reason[-7:] = 3
    db = Database(url)
    try:
        problems, counts = await recorded_differences(db=db, walks=walks, first=PER_HOUR, last=seh.steps)
    finally:
        await db.dispose()
    assert problems == []
    assert counts["unit_hours"] == 71 * sum(len(w.available) for w in walks)
    assert counts["seh_hours"] == 71
    assert counts["stop_episodes"] >= 3
