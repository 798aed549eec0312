"""The 45-minute norm ("45-minutennorm"): every parameter of our model, in one place, with its source.

The norm
--------
(Virtually) every inhabitant must be able to be brought to an SEH by ambulance within 45
minutes: "de totaaltijd die nodig is om met een ambulance de patiënt op de plaats van het
ongeval te bereiken en vervolgens naar een SEH-locatie te rijden" (Beleidsregels WTZi 2009,
§3.1, BWBR0026437; the same words on vws.rijksopenheid.nl/1159), computed "volgens het model
dat het RIVM heeft ontwikkeld" (ibid., note 2). The clock starts at the call ("binnen 45
minuten na melding", vzinfo.nl, acute verloskunde).

RIVM's analysis (the yearly "Bereikbaarheidsanalyse SEH's en acute verloskunde")
---------------------------------------------------------------------------------
An ambulance leaves the nearest ambulance station with 24/7 readiness, drives with urgency to
the patient, loads the patient and drives on to the nearest basic SEH open 24/7 (Zwakhals &
Kommer, "Analyse gevoelige ziekenhuizen 2013", RIVM). Driving times come from RIVM's
"rijtijdenmodel": the time an ambulance needs to drive "met spoed" between two points on the
real road network (Kommer & Zwakhals, "Modellen referentiekader ambulancezorg 2008.
Documentatie rijtijden- en capaciteitsmodel", RIVM rapport 270412001/2011), with a speed per
road section; it was renewed in 2016 and again for 2022 ("de lagere rijsnelheid van de
ambulances, zoals blijkt uit het geactualiseerde rijtijdenmodel", vzinfo.nl/acute-zorg/regionaal/seh).

**What could not be found** (searched: vzinfo.nl, rivm.nl, the RIVM reports' public
summaries, parliamentary papers): RIVM's own minutes for call handling, turnout and time on
scene in its analysis, and its speeds per road type. Their methods chapters were not
readable here. So each value below is the documented one closest to the norm, named with its
source, and **none was tuned** to come near RIVM's total: `regions/COVERAGE.md` reports the
difference and what it comes from.

Our model
---------
    minutes(point) = DISPATCH + TURNOUT + drive(nearest counted station → point)   (response)
                   + ON_SCENE
                   + drive(point → nearest counted SEH)                           (transport)
    within        ⇔ minutes(point) ≤ NORM

* `dispatch_min` = 2 ("meldtijd": from the call being answered to the crew being alerted) and
  `turnout_min` = 2 ("uitruktijd": from the alert until the crew drives off): "De landelijke
  norm voor de meldtijd is 2 minuten. De landelijke norm voor de uitruktijd is ook 2 minuten"
  (vrgz.nl, ambulancezorg, "Begrippen"), within the A1 response norm of 15 minutes from the
  call (Regeling Tijdelijke wet ambulancezorg 2012, art. 7: "in ten minste 95% van de
  A1-meldingen een ambulance binnen 15 minuten na aanname van de melding ter plaatse").
* The response drive: from the nearest station of the counted set (`regions.stations`: the
  224 stations of RIVM's 2019 list staffed `24 uur`; RIVM counted 225 in 2022) by the travel
  model below. A station on a Wadden island serves only its island; no mainland point is
  reached from one (there is no road).
* `on_scene_min` = 5: "Vervolgens heeft het ambulancepersoneel 5 minuten stabilisatie- en
  inlaadtijd. De overige 25 minuten resteert voor het vervoer" (the Minister of VWS on the
  norm's make-up, answer to parliamentary questions on Oost-Groningen, February 2010; the same
  15/5/25 split in Kamerstuk 32 854 nr. 21, 2014). RIVM's own value was not found. For
  scale: measured care on scene averaged 20 minutes in 2009 (Kommer & Zwakhals, "Tijdsduren in
  de ambulancezorg", RIVM briefrapport 270482001/2010); the norm is a planning norm.
* Driving: the dispatch model (`regions.travel`): geodesic distance × 1.3 detour; the first
  3 km at 40 km/h, the next 12 km at 70, the rest at 100 km/h; plus 1 fixed minute per drive.
  It is ours, not RIVM's (whose speeds per road section were not found): no water, no
  traffic, no road classes.
* Population: CBS inhabitants per 4-digit postcode area on 1 January 2021 (4,067 areas,
  17,472,870 people), each counted whole at its centroid. RIVM's unit (address, PC6 or PC4)
  was not found.
* SEHs: the Dutch 24/7 SEHs of the facility list (kind `seh`, 80) in the baseline; live, the
  SEHs that take ambulances now (`regions.coverage.counts_as_open`). No Belgian or German SEH.

The Wadden islands
------------------
Texel, Vlieland, Terschelling, Ameland and Schiermonnikoog each have a 24/7 station but no SEH
that counts. Without a ferry or helicopter model, and a straight line across the Marsdiep or
the Wadden Sea being no ambulance route, their 25 inhabited PC4 areas (24,390 people) count as
**outside, with unknown minutes**. RIVM, too, counts the islanders and finds nearly all of them
outside ("Voor 33.300 inwoners gelden langere reistijden; deze mensen wonen bijna allemaal op
de Waddeneilanden", Kamerbrief 29 247 nr. 260, 2018; in 2011 24,115 of 142,300 outside lived
on the islands, Kamerbrief 29 247 nr. 149). Every other Dutch island has a bridge, dam or tunnel.
"""

from __future__ import annotations

from dataclasses import dataclass

NORM_MIN = 45.0

WADDEN_PC4: frozenset[str] = frozenset(
    [str(code) for code in range(1791, 1798)]  # Texel
    + ["8899"]  # Vlieland
    + [str(code) for code in (*range(8881, 8886), *range(8891, 8898))]  # Terschelling
    + [str(code) for code in range(9161, 9165)]  # Ameland
    + ["9166"]  # Schiermonnikoog
)
"""The inhabited PC4 areas of the Wadden islands (shared/data/population/README.md: 24,390 people)."""


@dataclass(frozen=True, slots=True)
class NormParameters:
    """The norm's fixed time components in minutes (the module docstring gives each one's source)."""

    norm_min: float = NORM_MIN
    dispatch_min: float = 2.0
    turnout_min: float = 2.0
    on_scene_min: float = 5.0

    @property
    def before_driving_min(self) -> float:
        """From the call until the ambulance drives off."""
        return self.dispatch_min + self.turnout_min


PARAMETERS = NormParameters()


@dataclass(frozen=True, slots=True)
class Published:
    """RIVM's national figures, to print beside ours (never used to compute them)."""

    year: int
    share_within: float
    outside: int
    outside_year_before: int
    sehs_24_7: int
    stations_24_7: int
    source: str


RIVM_2022 = Published(
    year=2022,
    share_within=0.997,
    outside=59_800,
    outside_year_before=33_700,
    sehs_24_7=80,
    stations_24_7=225,
    source="RIVM, Bereikbaarheidsanalyse SEH's 2022, as shown on vzinfo.nl/acute-zorg/regionaal/seh",
)
