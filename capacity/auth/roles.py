"""Who may do what: the one table of roles, and the rules routes declare.

Every route and websocket declares one rule, as a dependency (capacity.auth.deps) or, for
the few that need no key, with `Depends(public)`. A rule names the roles that may pass it;
the scope (which facility, which regions) is checked by the dependency that carries it.
`tests/auth/test_security_roles.py` walks every route of the app and fails on one without a rule,
then calls each with a key of every role and expects exactly what this table says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

from capacity.domain import Role

EVERY_ROLE = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Rule:
    """What a route needs: a key of one of `roles` (None: no key at all), within `scope`."""

    name: str
    roles: frozenset[Role] | None
    scope: str

    def admits(self, role: Role) -> bool:
        return self.roles is None or role in self.roles


PUBLIC = Rule("public", None, "no key: the pages, health, metrics and shipped reference data")
ANY_KEY = Rule("any key", EVERY_ROLE, "the answer holds only the key's regions")
READ_REGION = Rule("read region", EVERY_ROLE, "the region is one of the key's regions")
READ_FACILITY = Rule("read facility", EVERY_ROLE, "the facility lies in one of the key's regions")
WRITE_FACILITY = Rule("write facility", frozenset({Role.facility}), "the facility's own key only")
SEND_DOCUMENTS = Rule(
    "send documents", frozenset({Role.facility, Role.admin}), "a facility key its own facility's reports; an admin key any facility's"
)
HISTORY = Rule(
    "history",
    frozenset({Role.facility, Role.dispatch, Role.coordinator, Role.admin}),
    "the facility or region lies in one of the key's regions (viewers see the boards, not the record)",
)
ANNOUNCE = Rule("announce", frozenset({Role.dispatch, Role.admin}), "every region")
ANNOUNCEMENT_PARTY = Rule(
    "announcement party",
    frozenset({Role.dispatch, Role.admin, Role.facility}),
    "dispatch and admin; a facility only for announcements to itself",
)
ALERTS = Rule(
    "alerts", frozenset({Role.facility, Role.dispatch, Role.coordinator, Role.admin}), "the key's own subscriptions, in its regions"
)
COORDINATE = Rule("coordinate", frozenset({Role.coordinator, Role.dispatch, Role.admin}), "the region is one of the key's regions")
INCIDENTS = Rule(
    "incidents",
    frozenset({Role.dispatch, Role.coordinator, Role.admin}),
    "every region: a plan crosses region borders, so any coordinator may propose one and see every incident",
)
PLAN = Rule("what-if", frozenset({Role.coordinator, Role.dispatch, Role.admin}), "the key's regions")
ADMIN = Rule("admin", frozenset({Role.admin}), "everything: facilities, keys, capabilities, identifiers, audit")

F = TypeVar("F", bound=Callable[..., Any])


def declares(rule: Rule) -> Callable[[F], F]:
    """Mark a dependency as the carrier of `rule`, so the route that uses it has declared it."""

    def mark(dependency: F) -> F:
        dependency.__rule__ = rule  # type: ignore[attr-defined]
        return dependency

    return mark


@declares(PUBLIC)
async def public() -> None:
    """The declaration that a route needs no key (it still gets the security headers and body limits)."""


def iter_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of an app, through included routers (FastAPI keeps them nested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from iter_routes(included.routes)
        else:
            yield route


def rules_of(route: BaseRoute) -> list[Rule]:
    """The rules a route declares through its dependencies (sub-dependencies included)."""
    found: list[Rule] = []

    def walk(dependant: Dependant) -> None:
        for sub in dependant.dependencies:
            rule = getattr(sub.call, "__rule__", None)
            if rule is not None:
                found.append(rule)
            walk(sub)

    dependant = getattr(route, "dependant", None)
    if dependant is not None:
        walk(dependant)
    return found
