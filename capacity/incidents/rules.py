"""The casualty-distribution rules (gewondenspreiding) in ONE place, each with its source or a
stated assumption. RULES.md beside this module says the same for people, Dutch terms with English.

Sources (SOURCES below, by key):
- `ntvg2017`: Haverkort, De Jong, Van Spengler, Leenen, "Een bomaanslag in Nederland. Hoe verzorgen
  we de opvang in Nederlandse ziekenhuizen?", Ned Tijdschr Geneeskd 2017;161:D1020: distributing the
  casualties to where the right care is, through gewondenspreidingsplannen, is the key lesson of
  recent attacks; the Calamiteitenhospitaal (Utrecht) adds 200 beds within 30 minutes.
- `nw2017`: Netwerk Acute Zorg Noordwest, "ROAZ bekrachtigt bovenregionale gewondenspreidingsplan
  bij grootschalige incidenten" (29 June 2017) and the project page of the Bovenregionaal
  Gewondenspreidingsplan Noord-Holland/Flevoland: the plan covers the first 2 hours; principles
  "optimale spreiding van gewonden", "T1 slachtoffers in een Level 1-ziekenhuis", "in één keer naar
  de juiste plek"; the nearest hospital is spared ("ontzien") because self-referrers go there;
  casualties needing no acute care are spread over the region's hospitals.
- `azn2014`: Ambulancezorg Nederland, "Model opschalingsplan ambulancezorg — RAV's voorbereid"
  (June 2014), §2.2 "Ieder T1-slachtoffer zo snel mogelijk op transport"; §2.2.7 asks every RAV for
  a gewondenspreidingsplan.
- `lpcgbi`: Landelijk Protocol Coördinatie Grootschalige Brandwonden Incidenten (summary on
  ambulanceblog.nl): national coordination from 10 burns casualties; the three burns centres are in
  Groningen (Martini), Beverwijk (Rode Kruis Ziekenhuis) and Rotterdam (Maasstad) (skipr.nl 2025,
  Brandwondenzorg Nederland).
- `triage_nl`: nl.wikipedia "Triage": at incidents GHOR triagists sort casualties by severity. The
  T1/T2/T3 wording below is the usual Dutch one (from the Triage Sieve/Sort of MIMMS, priority 1-3);
  no stored source quoting it word for word was found: the wording is our assumption.
- `reflex_be`: VRT NWS, 26 March 2022 (Belgian "reflexcapaciteit"): a hospital takes at least 3% of
  its licensed beds in the first two hours, of whom about 10% critical, 30% serious, 60% light. Not a
  Dutch rule; quoted only as the nearest published figure for a per-hospital share (none was found
  for the Netherlands).
"""

from __future__ import annotations

from dataclasses import dataclass

from regions.norm import NORM_MIN

RULES_VERSION = "gewondenspreiding-2026.1"
"""Name and version of the rule set; every plan carries it, so a stored plan says which rules made it."""

SOURCES: tuple[tuple[str, str, str], ...] = (
    ("ntvg2017", "https://www.ntvg.nl/artikelen/een-bomaanslag-nederland", "Een bomaanslag in Nederland (NTvG 2017;161:D1020)"),
    (
        "nw2017",
        "https://www.netwerkacutezorgnoordwest.nl/nieuws/roaz-bekrachtigd-bovenregionale-gewondenspreidingsplan-grootschalige-incidenten/",
        "ROAZ bekrachtigt bovenregionale gewondenspreidingsplan bij grootschalige incidenten (Noord-Holland/Flevoland, 2017)",
    ),
    (
        "nw_plan",
        "https://www.netwerkacutezorgnoordwest.nl/activiteit/ontwikkeling-en-implementatie-bovenregionaal-gewondenspreidingsplan-noord-holland-flevoland/",
        "Ontwikkeling en implementatie Bovenregionaal Gewondenspreidingsplan Noord-Holland/Flevoland",
    ),
    (
        "azn2014",
        "https://adoc.pub/model-opschalingsplan-ambulancezorg-rav-s-voorbereid-juni-20.html",
        "Model opschalingsplan ambulancezorg 'RAV's voorbereid' (AZN, 2014)",
    ),
    (
        "lpcgbi",
        "https://www.ambulanceblog.nl/landelijk-protocol-coordinatie-grootschalige-brandwonden-incidenten/",
        "Landelijk Protocol Coördinatie Grootschalige Brandwonden Incidenten",
    ),
    (
        "burns_centres",
        "https://www.skipr.nl/nieuws/brandwondencentra-gaan-samenwerken-met-noodziekenhuis/",
        "Brandwondencentra gaan samenwerken met noodziekenhuis (2025)",
    ),
    ("triage_nl", "https://nl.wikipedia.org/wiki/Triage", "Triage (nl.wikipedia)"),
    (
        "reflex_be",
        "https://www.vrt.be/vrtnws/nl/2022/03/26/uz-gent-kan-tot-30-slachtoffers-per-uur-opvangen-na-nucleaire-of/",
        "UZ Gent kan tot 30 slachtoffers per uur opvangen (reflexcapaciteit)",
    ),
)
"""(key, URL, title) of every source a rule cites."""

CLASSES: tuple[str, ...] = ("T1", "T2", "T3")
"""Triage classes, most severe first (`triage_nl`; wording an assumption):
T1 immediate (onmiddellijk: direct levensbedreigd, needs treatment now), T2 urgent (urgent: needs
treatment within a few hours, stable for now), T3 delayed (uitgesteld: can wait, mostly walking)."""

CLASS_WORDS = {"T1": "immediate", "T2": "urgent", "T3": "delayed"}

NEEDS: tuple[str, ...] = ("burns", "paediatric")
"""Special needs, served in this order. The request gives them as counts among the casualties without
their class; assumption: they are the most severe casualties first (burns before children)."""


@dataclass(frozen=True, slots=True)
class Rules:
    """The planner's parameters, each documented in RULES.md; DEFAULT_RULES are the defaults."""

    version: str = RULES_VERSION
    norm_min: float = NORM_MIN
    """The 45-minute norm (regions.norm): hospitals within it first, beyond only when nothing within can take them."""
    share_fraction: float = 0.5
    """A hospital's share of one incident: this fraction of its free SEH places (and, for T1, of its free
    IC beds) before any hospital gets more. Assumption: no Dutch per-hospital figure was found (`reflex_be`
    is the nearest published one); half keeps room for the self-referrers and the ordinary patients."""
    share_min: int = 1
    """Every hospital with a free place has a share of at least this many casualties."""
    spare_nearest: bool = True
    """`nw2017`: the nearest hospital is spared because self-referrers (mostly light injuries) go there:
    it gets no T3 until every other hospital within the norm is at its share."""
    trauma_first: bool = True
    """`nw2017`: T1 in a Level 1 hospital (trauma_centre) when one within the norm can take them."""


BURNS_RULE = (
    "Burns go to a burns centre at any distance (the lead's rule for issue 22); `lpcgbi` itself sends burns casualties "
    "to the nearest SEH to be stabilised first and coordinates transfers to the centres from 10 casualties."
)

DEFAULT_RULES = Rules()
