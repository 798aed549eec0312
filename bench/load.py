"""What the load generators send: reports rotating over facilities, each with its own key,
with measured_at strictly increasing per facility (1 ms per report, from a base time).

The wrk script (push.lua) builds the very same requests; this module is the Python side
(the fan-out pusher and the fallback generator) and a minimal keep-alive HTTP/1.1 client.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from capacity.auth.service import SCRYPT, create_key
from capacity.db import Database
from capacity.domain import Role
from capacity.migrate import upgrade
from regions.registry import load_registry

BODY = '{{"measured_at":"{measured_at}","seh":{{"status":"open"}},"units":[{{"type":"ic_adult","staffed":10,"occupied":6,"available":4}}]}}'


@dataclass(frozen=True)
class Credentials:
    """Facility id -> its own facility key, and one viewer key (reads every region)."""

    facilities: dict[str, str]
    viewer: str
    dispatch: str

    def write_spec(self, path: Path) -> Path:
        """One `facility_id token` per line, for the wrk script."""
        path.write_text("".join(f"{f} {t}\n" for f, t in self.facilities.items()))
        return path


async def create_credentials(url: str) -> Credentials:
    """One facility key per facility plus a viewer key, in the database (async SQLAlchemy URL,
    migrated here) the server will use."""
    registry = load_registry()
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        facilities: dict[str, str] = {}
        ids = list(registry.facilities)
        for start in range(0, len(ids), 8):
            batch = ids[start : start + 8]
            made = await asyncio.gather(
                *(create_key(db=db, registry=registry, role=Role.facility, facility_id=f, label="bench") for f in batch)
            )
            facilities.update({f: token for f, (_, token) in zip(batch, made, strict=True)})
        _, viewer = await create_key(db=db, registry=registry, role=Role.viewer, label="bench viewer")
        _, dispatch = await create_key(db=db, registry=registry, role=Role.dispatch, label="bench dispatch")
        return Credentials(facilities=facilities, viewer=viewer, dispatch=dispatch)
    finally:
        await db.dispose()


def scrypt_ms(samples: int = 5) -> float:
    """What verifying one key costs the server when it is not cached (the app's scrypt settings)."""
    started = time.perf_counter()
    for _ in range(samples):
        hashlib.scrypt(os.urandom(32), salt=os.urandom(16), **SCRYPT)
    return (time.perf_counter() - started) / samples * 1000


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def post_request(path: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Rotation:
    """Round-robin over `tokens`; facility i's n-th report is measured at base_ms + n."""

    tokens: dict[str, str]
    base_ms: int
    _ids: list[str] = field(init=False)
    _sent: dict[str, int] = field(init=False)
    _next: int = 0

    def __post_init__(self) -> None:
        self._ids = list(self.tokens)
        self._sent = dict.fromkeys(self._ids, 0)

    def next_request(self) -> bytes:
        facility = self._ids[self._next % len(self._ids)]
        self._next += 1
        measured = iso_ms(self.base_ms + self._sent[facility])
        self._sent[facility] += 1
        body = BODY.format(measured_at=measured).encode()
        return post_request(f"/api/v1/facilities/{facility}/reports", self.tokens[facility], body)


class Http1:
    """One keep-alive HTTP/1.1 connection, parsing just enough of the answer (status, length, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Http1:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except Exception:  # the peer reset it first: closed either way
            pass
