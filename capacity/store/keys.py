"""Every Redis key, stream field and facility hash field, each named once.

Every key of a region carries the region as a hash tag (`cap:{ROAZ01}:…`), so a region's
state, its stream and its timers live in one Redis Cluster slot and one script may touch
them all. A facility key's request bucket carries its facility's region too, so the push
can charge it inside the apply script.
"""

from __future__ import annotations

from capacity.state import OPTIONAL_PARTS

PREFIX = "cap"


def _region(region_id: str, rest: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:{rest}"


def facility_key(region_id: str, facility_id: str) -> str:
    """Hash: one facility's live state (fields below), written only by the Lua scripts."""
    return _region(region_id, f"fac:{facility_id}")


def facilities_key(region_id: str) -> str:
    """Set: every facility of the region with a state hash (what a replica loads)."""
    return _region(region_id, "facilities")


def stream_key(region_id: str) -> str:
    """Stream: the region's events and notices, in order; its ids are the event ids clients resume from."""
    return _region(region_id, "events")


def ready_key(region_id: str) -> str:
    """Present while the region's live state is whole; absent after Redis lost it, until rebuilt."""
    return _region(region_id, "ready")


def persisted_key(region_id: str) -> str:
    """The stream id up to which every entry is known to be in the SQL record (the backstop's cursor)."""
    return _region(region_id, "persisted")


def announcement_key(region_id: str, announcement_id: str) -> str:
    return _region(region_id, f"ann:{announcement_id}")


def expiry_key(region_id: str) -> str:
    """Sorted set: active announcements of the region by the moment their hold lapses (epoch ms)."""
    return _region(region_id, "ann-expiry")


def stale_key(region_id: str) -> str:
    """Sorted set: every facility that reported, by the moment its newest report goes stale (epoch ms)."""
    return _region(region_id, "stale-at")


def stale_cursor_key(region_id: str) -> str:
    """Up to which moment `stale` notices went out: each facility's passing is announced once."""
    return _region(region_id, "stale-cursor")


def alert_states_key(region_id: str) -> str:
    """Hash: alert subscription id → its state (firing or clear, and when it last changed)."""
    return _region(region_id, "alerts:state")


def coverage_published_key(region_id: str) -> str:
    """The signature of the region's last published coverage figures (beside its stream)."""
    return _region(region_id, "coverage:last")


def lock_key(region_id: str, purpose: str) -> str:
    """A lock one worker at a time holds for a region's `purpose` (rebuild, persist, alerts)."""
    return _region(region_id, f"lock:{purpose}")


def bucket_key(purpose: str, key_id: str, region_id: str | None = None) -> str:
    """A key's token bucket (capacity.auth.ratelimit): `requests`, or `failures` of its secret.
    With `region_id` (a facility key's own region) it shares the region's slot."""
    return _region(region_id, f"bucket:{purpose}:{key_id}") if region_id else f"{PREFIX}:bucket:{purpose}:{key_id}"


def ticket_key(ticket: str) -> str:
    """A single-use websocket ticket (capacity.auth.tickets), expiring on its own."""
    return f"{PREFIX}:ticket:{ticket}"


def sockets_key(key_id: str) -> str:
    """A key's open websockets across workers: members expire unless their worker renews them."""
    return f"{PREFIX}:sockets:{key_id}"


COVERAGE_LOCK_KEY = f"{PREFIX}:coverage:lock"
"""Held by the one worker that publishes coverage changes."""
REGISTRY_VERSION_KEY = f"{PREFIX}:registry:version"
"""Bumped by every facilities import; workers reload their registry when it changes."""
KEYS_VERSION_KEY = f"{PREFIX}:keys:version"
"""Bumped when a key is revoked or rotated: every worker re-checks the keys it trusts."""
CHECKED_RUN_KEY = f"{PREFIX}:redis:checked-run"
"""The Redis server run whose streams were last checked against the SQL record (capacity.history.jobs)."""
RESTART_LOCK_KEY = f"{PREFIX}:redis:restart-check-lock"


# Fields of a region stream entry: exactly one of the kinds, plus `f` on those about one facility.
FACILITY_FIELD = "f"
EVENT_FIELD = "e"
"""A report as applied (JSON, capacity.state.EventBody)."""
ANNOUNCEMENT_FIELD = "a"
"""An announcement's hold began or ended (JSON)."""
ALERT_FIELD = "al"
"""An alert for one key (JSON, capacity.alerts)."""
STALE_FIELD = "k"
"""A facility's figures went stale (JSON, capacity.reports.timers)."""
COVERAGE_FIELD = "c"
"""The region's 45-minute coverage changed (JSON, capacity.coverage)."""
RESET_FIELD = "r"
"""The region's live state was rebuilt from SQL: everything before may hold unrecorded events."""


# Fields of a facility hash.
TS_FIELD = "ts"
DIGEST_FIELD = "digest"
EVENT_ID_FIELD = "event_id"
SEH_FIELD = "seh"
UNIT_PREFIX = "u:"
HOLD_PREFIX = "h:"
"""h:<need>: places held by announcements; the shown free count is available minus these."""
HASH_FIELDS = dict(zip(OPTIONAL_PARTS, ("cs", "w", "n"), strict=True))
"""Fields for the parts of a report beyond its SEH status and units."""
STOP_SINCE_FIELD = "ss"
"""When the current stop began (present only while the SEH is on stop, closed or stop_expired)."""
STALE_SINCE_FIELD = "st"
"""When the watchdog called the figures stale; removed by the facility's own next report."""
