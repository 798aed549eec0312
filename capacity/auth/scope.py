"""A query that may name a region (`?region=`), as one dependency: any key, then the query
(a 422 first when it is malformed), then the region it names checked in one place
(capacity.auth.deps.readable_region: 404 when unknown, 403 and audited when out of scope).

A route declares it with its own query model:
`PlacesAsked = Annotated[ScopedQuery[PlacesQuery], Depends(scoped_query(PlacesQuery))]`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Generic, Protocol, TypeVar

from fastapi import Query, Request

from capacity.auth.deps import CurrentPrincipal, readable_region
from capacity.auth.models import Principal


class RegionQuery(Protocol):
    @property
    def region(self) -> str | None: ...


Q = TypeVar("Q", bound=RegionQuery)


@dataclass(frozen=True, slots=True)
class ScopedQuery(Generic[Q]):
    """The caller and its query, whose `region` (when given) the caller may read."""

    principal: Principal
    query: Q


def scoped_query(model: type[Q]) -> Callable[..., Awaitable[ScopedQuery[Q]]]:
    """The dependency reading `model` from the query string, for `Depends`."""

    async def scoped(request: Request, who: CurrentPrincipal, query: Q) -> ScopedQuery[Q]:
        if query.region is not None:
            await readable_region(request, who, query.region)
        return ScopedQuery(who, query)

    scoped.__annotations__["query"] = Annotated[model, Query()]  # what FastAPI reads the query string into
    return scoped
