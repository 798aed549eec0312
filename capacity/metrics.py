"""Prometheus metrics. With several workers, PROMETHEUS_MULTIPROC_DIR makes them add up."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REPORTS_ACCEPTED = Counter("capacity_reports_accepted_total", "Reports applied", ["region"])
REPORTS_REJECTED = Counter("capacity_reports_rejected_total", "Reports refused, nothing applied", ["reason"])
APPLY_SECONDS = Histogram(
    "capacity_apply_seconds",
    "Time to apply one report in Redis (script round trip)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
EVENTS_FANNED_OUT = Counter("capacity_events_fanned_out_total", "Event messages queued to websocket clients", ["region"])
WS_CLIENTS = Gauge("capacity_ws_clients", "Connected websocket clients", ["region"], multiprocess_mode="livesum")
RECORD_SECONDS = Histogram(
    "capacity_record_seconds",
    "Time to commit one report's event to the SQL record (group commit included)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
REBUILDS = Counter("capacity_rebuilds_total", "Regions whose live state was rebuilt from SQL", ["region"])
ROLLUP_FOLD_FAILURES = Counter(
    "capacity_rollup_fold_failures_total", "Recorded events whose fold into the hourly rollups failed (the rollups job retries)"
)
EVENTS_BACKFILLED = Counter("capacity_events_backfilled_total", "Events the backstop recorded because the ingest had not", ["region"])
REGIONS_NOT_READY = Gauge("capacity_regions_not_ready", "Regions whose live state is missing or being rebuilt", multiprocess_mode="livemax")
STALE_FACILITIES = Gauge(
    "capacity_stale_facilities",
    "Facilities whose newest report is older than their reporting interval",
    ["region"],
    multiprocess_mode="livemax",
)
WS_DROPPED = Counter("capacity_ws_dropped_total", "Websocket clients dropped for falling behind", ["region"])
AUTH_FAILURES = Counter("capacity_auth_failures_total", "Requests and websockets refused for their key", ["reason"])
REDIS_PRIMARY_CHANGES = Counter(
    "capacity_redis_primary_changes_total",
    "Times this worker found another Redis process holding the data (a fail-over, a restart; on a Cluster, of any master)",
)
JOB_FAILURES = Counter(
    "capacity_job_failures_total",
    "Failed runs of a background job (or a stream consumer), per region ('*': the whole job)",
    ["job", "region"],
)
JOB_LAST_SUCCESS = Gauge(
    "capacity_job_last_success_timestamp_seconds", "When each background job last ran without failing", ["job"], multiprocess_mode="max"
)
STREAM_ENTRIES_SKIPPED = Counter(
    "capacity_stream_entries_skipped_total", "Region stream entries no consumer could read, passed over", ["region", "reason"]
)
HOURS_UNREADABLE = Counter(
    "capacity_opening_hours_unreadable_total", "Stored opening hours that no longer read (a facility left without hours), logged"
)
HOURS_TRANSITIONS = Counter(
    "capacity_opening_hours_transitions_total",
    "SEHs closed or opened by their declared opening hours (once per transition)",
    ["region", "to"],
)
EVENT_LOOP_LAG = Histogram(
    "capacity_event_loop_lag_seconds",
    "How late the event loop wakes a 100 ms sleeper: anything blocking the loop shows up here",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
RATE_LIMITED = Counter("capacity_rate_limited_total", "Requests refused by a key's rate limit", ["bucket"])


def render() -> tuple[bytes, str]:
    """The exposition text; summed over workers when running multi-process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves its __init__ unannotated
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
