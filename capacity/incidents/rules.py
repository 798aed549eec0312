"""The casualty-distribution rules in ONE place, each with its source or a stated assumption.

RULES.md beside this module says the same in words for people (Dutch terms with English)."""

from __future__ import annotations

from dataclasses import dataclass

from regions.norm import NORM_MIN

RULES_VERSION = "gewondenspreiding-2026.1"
"""Name and version of the rule set; every plan carries it, so a stored plan says which rules made it."""

CLASSES: tuple[str, ...] = ("T1", "T2", "T3")
"""Triage classes, most severe first (T1 immediate, T2 urgent, T3 delayed)."""

NEEDS: tuple[str, ...] = ("burns", "paediatric")
"""Special needs, in the order they are served (burns before paediatric: an assumption, see RULES.md)."""


@dataclass(frozen=True, slots=True)
class Rules:
    """The planner's parameters. Defaults are DEFAULT_RULES; a test may vary them."""

    version: str = RULES_VERSION
    norm_min: float = NORM_MIN
    share_fraction: float = 0.5
    share_min: int = 1


DEFAULT_RULES = Rules()
