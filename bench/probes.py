"""What a server of ours says about itself under load: event-loop lag from its /metrics, and the
Redis connections it holds (CLIENT LIST, by the name each connection carries)."""

from __future__ import annotations

import math
import re
import urllib.request
from collections import Counter

import redis

from capacity.store.connection import parse_target

LAG = "capacity_event_loop_lag_seconds"
BUCKET = re.compile(r'^(?P<name>[a-z_]+)_bucket\{(?:[^}]*,)?le="(?P<le>[^"]+)"[^}]*\} (?P<value>[0-9.e+-]+)$')


def histogram(port: int, name: str = LAG) -> dict[float, float]:
    """The cumulative bucket counts of one histogram on `http://127.0.0.1:<port>/metrics`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if (m := BUCKET.match(line)) and m["name"] == name:
            buckets[math.inf if m["le"] == "+Inf" else float(m["le"])] = float(m["value"])
    return buckets


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of what was observed between two scrapes, interpolated within its bucket as
    Prometheus' histogram_quantile does (NaN when nothing was observed)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def redis_connections(url: str) -> dict[str, int]:
    """Connections per worker: every connection of ours is named `capacity-<worker>[-reader]`
    (on a Cluster, summed over every node)."""
    if url.startswith("redis+cluster://"):
        host, port = parse_target(url).nodes[0]
        cluster = redis.RedisCluster(host=host, port=port)
        clients = [redis.Redis(host=node.host, port=node.port) for node in cluster.get_nodes()]
        cluster.close()
    else:
        clients = [redis.Redis.from_url(url)]
    names = []
    for client in clients:
        try:
            names += [c.get("name", "") for c in client.client_list()]
        finally:
            client.close()
    return dict(Counter(n.removesuffix("-reader") for n in names if n.startswith("capacity-") and n != "capacity-cli"))
