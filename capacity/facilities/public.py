"""A facility's public fields, declared once: what the API shows of a facility wherever one appears
(the registry listing, the board, free places, nearest available) and where it is kept (the SQL
row of an imported facility), so that a field added or renamed here reaches every one of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from operator import attrgetter
from typing import Any

from pydantic import BaseModel

from regions.registry import Facility

PLAIN_FIELDS = ("id", "name", "city", "kind", "lat", "lon", "region_id", "reporting_interval_s", "synthetic", "source", "phone")
"""The fields that read the same on a `Facility`, its stored row and every answer; its units and
opening hours change form (a tuple, a `;`-list, a list; parsed hours, their text)."""

PUBLIC_FIELDS: Mapping[str, Callable[[Facility], Any]] = {
    **{name: attrgetter(name) for name in PLAIN_FIELDS},
    "units": lambda facility: list(facility.units),
    "opening_hours": lambda facility: facility.hours.text if facility.hours else None,
}
"""Every public field of a facility by its name in the registry listing (`FacilityOut`), and how
to read it off a `Facility`. Answers about one facility's place or candidacy name its id
`facility_id`; the board names its offered units `offers` (its `units` are the live figures)."""


def plain_fields(source: object, **given: Any) -> dict[str, Any]:
    """The plain fields read off `source` (a Facility, a stored row, a checked CSV row), but those `given`."""
    return {name: given[name] if name in given else getattr(source, name) for name in PLAIN_FIELDS}


def public_fields(model: type[BaseModel], facility: Facility, **renamed: str) -> dict[str, Any]:
    """The public fields `model` declares, from `facility`; `renamed` maps a public name to the
    model's (`id="facility_id"`). Field order is the model's own, so answers keep their shape."""
    return {field: read(facility) for field, read in _readers(model, tuple(sorted(renamed.items())))}


@cache
def _readers(model: type[BaseModel], renamed: tuple[tuple[str, str], ...]) -> tuple[tuple[str, Callable[[Facility], Any]], ...]:
    """Per model (and renaming), which of its fields are public and how each is read: worked out once."""
    names = dict(renamed)
    return tuple((field, read) for public, read in PUBLIC_FIELDS.items() if (field := names.get(public, public)) in model.model_fields)
