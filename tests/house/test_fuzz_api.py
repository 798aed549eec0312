"""Attacked through its own spec: thousands of requests generated from `/openapi.json` (what the
spec allows and what it forbids), sent to a real server on real Redis and SQL with an admin, a
facility, a dispatch and no key. Whatever arrives, the server answers it: never a 5xx, and every
4xx says in words what was wrong (`detail` on the JSON API, an OperationOutcome's diagnostics
on the FHIR routes), since a sender can only fix what it is told.

Run with `pytest -s` to see the counts per operation."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from capacity.config import Settings
from capacity.domain import Role
from tests.conftest import Keys, ServerThread

FACILITY = "seh-tno-00"  # ROAZ11
REGION = "ROAZ11"
EXAMPLES = 60
"""Per operation and generation mode (valid, invalid input): up to 120 requests for each of some 40
operations; fewer where the spec leaves little to vary (no parameters, no body)."""
TIME_BUDGET_S = 180.0
"""The whole fuzz stops generating after this long (a slow machine gets fewer requests, never a hang)."""
KNOWN_IDS = {"facility_id": FACILITY, "region_id": REGION}
"""Path parameters also sent as real ids, so the fuzz gets past 404 into the body and query checks."""
TIMELY = {"measured_at": timedelta(), "expected_until": timedelta(hours=1), "eta": timedelta(minutes=10)}
"""Times a generated body may get set to around now, so reports and announcements get applied:
random dates are refused as too old long before the code that stores them runs. Either all of
them, or all but `expected_until`, which then keeps its generated (often extreme) value."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest's settings without the per-key rate limit: the fuzz is one key's long burst."""
    return settings.model_copy(update={"rate_limit_per_s": 0})


ALL_BUT_THE_END = frozenset(TIMELY) - {"expected_until"}


def timely(body: Any, now: datetime, fields: frozenset[str]) -> Any:
    """The body with the time `fields` set relative to `now` (as TIMELY says), at any depth."""
    if isinstance(body, dict):
        return {k: (now + TIMELY[k]).isoformat() if k in fields else timely(v, now, fields) for k, v in body.items()}
    if isinstance(body, list):
        return [timely(item, now, fields) for item in body]
    return body


def message_of(path: str, response: Any) -> str | None:
    """The human message of an error answer, or None when it has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if path.startswith("/fhir/"):
        issues = body.get("issue") if body.get("resourceType") == "OperationOutcome" else None
        said = [i.get("diagnostics") for i in issues or [] if isinstance(i, dict)]
        return "; ".join(said) if said and all(isinstance(s, str) and s.strip() for s in said) else None
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail.strip() or None
    if isinstance(detail, list) and detail and all(isinstance(d, dict) and str(d.get("msg", "")).strip() for d in detail):
        return "; ".join(str(d["msg"]) for d in detail)
    return None


@dataclass
class Tally:
    """What the fuzz sent and what came back."""

    started: float = field(default_factory=time.monotonic)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    mute_refusals: list[str] = field(default_factory=list)
    skipped: int = 0

    @property
    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > TIME_BUDGET_S

    def report(self) -> str:
        lines = [
            f"requests generated and sent: {self.requests} in {time.monotonic() - self.started:.0f} s"
            f" ({self.skipped} generated after the time budget, not sent)",
            f"statuses: {dict(sorted(self.statuses.items()))}",
            f"5xx: {len(self.server_errors)}; 4xx without a message: {len(self.mute_refusals)}",
        ]
        lines += [f"  {label}: {count}" for label, count in sorted(self.per_operation.items())]
        lines += [f"  5xx {e}" for e in self.server_errors[:20]]
        lines += [f"  mute {e}" for e in self.mute_refusals[:20]]
        return "\n".join(lines)


def strategies(schema: Any) -> Iterator[tuple[str, Any]]:
    """Per operation one strategy: valid and invalid input, path ids generated or real."""
    for result in schema.get_all_operations():
        operation = result.ok()
        known = {p.name: KNOWN_IDS[p.name] for p in operation.path_parameters if p.name in KNOWN_IDS}
        options = []
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            options.append(operation.as_strategy(generation_mode=mode))
            if known:
                options.append(operation.as_strategy(generation_mode=mode, path_parameters=known))
        yield operation.label, st.one_of(options)


async def create_keys(keys: Keys) -> dict[str, str | None]:
    """An admin, a facility and a dispatch key, and none at all."""
    return {
        "admin": await keys.create(Role.admin),
        "facility": await keys.create(Role.facility, FACILITY),
        "dispatch": await keys.create(Role.dispatch),
        "none": None,
    }


def test_no_generated_request_gets_a_5xx_and_every_4xx_says_why(server: ServerThread, keys: Keys) -> None:
    tokens = asyncio.run(create_keys(keys))
    spec = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    tally = Tally()
    session = requests.Session()

    def send(label: str, case: Any, who: str, now: frozenset[str]) -> None:
        if tally.out_of_time:
            tally.skipped += 1
            return
        if now and isinstance(case.body, dict | list):
            case.body = timely(case.body, datetime.now(UTC), now)
        headers = {"Authorization": f"Bearer {tokens[who]}"} if tokens[who] else {}
        response = case.call(base_url=server.url, session=session, headers=headers, timeout=15)
        tally.requests += 1
        tally.statuses[response.status_code] += 1
        tally.per_operation[label] += 1
        said = f"{case.method} {case.formatted_path} as {who} → {response.status_code}: {response.content[:300]!r}"
        if response.status_code >= 500:
            tally.server_errors.append(f"{said}\n    reproduce: {case.as_curl_command(headers=headers)}")
        elif response.status_code >= 400 and message_of(case.path, response) is None:
            tally.mute_refusals.append(said)

    def fuzz(label: str, strategy: Any) -> None:
        @hypothesis_settings(
            max_examples=2 * EXAMPLES,
            deadline=None,
            database=None,
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, who=st.sampled_from(sorted(tokens)), now=st.sampled_from([frozenset(), frozenset(TIMELY), ALL_BUT_THE_END]))
        def one(case: Any, who: str, now: frozenset[str]) -> None:
            send(label, case, who, now)

        one()

    for label, strategy in strategies(schema):
        fuzz(label, strategy)
    session.close()
    print(f"\nschemathesis {schemathesis.__version__} over {len(tally.per_operation)} operations\n{tally.report()}")
    assert tally.requests >= 1000, f"too few requests sent to mean anything\n{tally.report()}"
    assert not tally.server_errors, tally.report()
    assert not tally.mute_refusals, tally.report()
