"""What the writers (EDXL-HAVE out, FHIR SANER out) read of a facility's live state.

Protocols rather than the core's board models, so `feeds/` stays below the core: the board's
`FacilityState`, `UnitView` and `SehView` satisfy them structurally and are passed as they are,
with no copy per request, while a type checker still checks every attribute a writer reads.
(Frozen dataclasses would need a conversion in the core for every facility; a Protocol needs none.)
Members are read-only properties, so a pydantic field or a dataclass attribute both fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from capacity.domain import UnitType


class UnitFigures(Protocol):
    """One unit's live figures; None is unknown, never zero."""

    @property
    def type(self) -> UnitType: ...
    @property
    def staffed(self) -> int | None: ...
    @property
    def occupied(self) -> int | None: ...
    @property
    def available(self) -> int | None: ...
    @property
    def measured_at(self) -> datetime: ...


class SehFigures(Protocol):
    """The live SEH status: status, reason code (and text for `other`), expected end."""

    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def reason_text(self) -> str | None: ...
    @property
    def expected_until(self) -> datetime | None: ...
    @property
    def measured_at(self) -> datetime: ...


class FacilityUnits(Protocol):
    """A facility's units, named: what the FHIR MeasureReport writer reads."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def units(self) -> Sequence[UnitFigures]: ...


class FacilityFigures(FacilityUnits, Protocol):
    """A facility placed on the map with its SEH status too: what the EDXL-HAVE writer reads."""

    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def seh(self) -> SehFigures | None: ...
