"""A query that may name a region (`?region=`), as one dependency: any key, then the query
(a 422 first when it is malformed), then the region it names checked in one place
(capacity.auth.deps.readable_region: 404 when unknown, 403 and audited when out of scope).

No `from __future__ import annotations` here: the dependency's query model is the factory's
argument, so its annotation must be the class itself when the function is made, not a string
FastAPI would look up among this module's globals.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Depends, Query, Request

from capacity.auth.deps import CurrentPrincipal, readable_region
from capacity.auth.models import Principal


class RegionQuery(Protocol):
    region: str | None


Q = TypeVar("Q", bound=RegionQuery)


@dataclass(frozen=True, slots=True)
class ScopedQuery(Generic[Q]):
    """The caller and its query, whose `region` (when given) the caller may read."""

    principal: Principal
    query: Q


def scoped_query(model: type[Q]) -> Any:
    """`Annotated[ScopedQuery[model], Depends(...)]`, for a route's parameter: `model` read from the query string."""

    async def scoped(request: Request, who: CurrentPrincipal, query: Annotated[model, Query()]) -> ScopedQuery[Q]:  # type: ignore[valid-type]
        if query.region is not None:
            await readable_region(request, who, query.region)
        return ScopedQuery(who, query)

    return Annotated[ScopedQuery[model], Depends(scoped)]  # type: ignore[valid-type]
