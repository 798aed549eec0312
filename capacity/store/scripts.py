"""Every Lua script, loaded once, and the one way to call them.

Calls go straight to EVALSHA (redis-py's `Script` objects check the client's type with a slow
`isinstance` against a Protocol on every call, a fifth of the push path's CPU when measured).
A Redis that does not know a script (restarted, failed over) answers NOSCRIPT; the script is
then loaded and the call repeated: a script that was not found did not run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from capacity.store.connection import is_cluster

Arg = str | bytes | int | float


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def _script(name: str, *parts: str) -> Script:
    """A script from its parts in `lua/` (a shared function first, then the script's body)."""
    folder = resources.files("capacity.store").joinpath("lua")
    source = "\n".join(folder.joinpath(part).read_text(encoding="utf-8") for part in parts)
    return Script(name=name, source=source, sha=hashlib.sha1(source.encode()).hexdigest())


APPLY = _script("apply", "token_bucket.lua", "apply.lua")
APPLY_BATCH = _script("apply_batch", "apply_batch.lua")
ANNOUNCE = _script("announce", "announce.lua")
RELEASE = _script("release", "release.lua")
STALE = _script("stale", "stale.lua")
BUCKET = _script("bucket", "token_bucket.lua", "bucket.lua")
SOCKETS = _script("sockets", "sockets.lua")
COVERAGE = _script("coverage", "coverage.lua")
SNAPSHOT = _script("snapshot", "snapshot.lua")
EVERY_SCRIPT = (APPLY, APPLY_BATCH, ANNOUNCE, RELEASE, STALE, BUCKET, SOCKETS, COVERAGE, SNAPSHOT)


async def run(redis: aioredis.Redis, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
    """Run `script` in one round trip (two after Redis forgot it)."""
    try:
        return await redis.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await redis.script_load(script.source)
        return await redis.evalsha(script.sha, len(keys), *keys, *args)


Call = tuple[Script, Sequence[str], Sequence[Arg]]


async def run_all(redis: aioredis.Redis, calls: Sequence[Call]) -> list[Any]:
    """Several script calls in one round trip, each atomic on its own. A call that failed comes
    back as its exception, in its place; those Redis did not know are loaded and repeated."""
    answers = await _pipelined(redis, calls)
    missing = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
    if missing:
        await load_all(redis)
        for i, answer in zip(missing, await _pipelined(redis, [calls[i] for i in missing]), strict=True):
            answers[i] = answer
    return answers


async def _pipelined(redis: aioredis.Redis, calls: Sequence[Call]) -> list[Any]:
    pipe = redis.pipeline(transaction=False)
    for script, keys, args in calls:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    return list(await pipe.execute(raise_on_error=False))


def raised(answers: list[Any]) -> list[Any]:
    """The answers of `run_all`, raising the first failure among them."""
    for answer in answers:
        if isinstance(answer, Exception):
            raise answer
    return answers


async def load_all(redis: aioredis.Redis) -> None:
    """Load every script (at start-up), so the first calls need no second round trip. On a
    Cluster each SCRIPT LOAD goes to every master (a replica promoted later learns them on its
    first NOSCRIPT, as a restarted server does)."""
    if is_cluster(redis):
        for script in EVERY_SCRIPT:
            await redis.script_load(script.source)
        return
    pipe = redis.pipeline(transaction=False)
    for script in EVERY_SCRIPT:
        pipe.script_load(script.source)
    await pipe.execute()
