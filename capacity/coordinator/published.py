"""Published SEH stop figures, for the coordinator's report to stand beside.

LNAZ (Landelijk Netwerk Acute Zorg) made SEH stop figures public for the first time in a letter
to the Ministry of VWS in March 2023, about January 2023: an average SEH in the Netherlands was
closed to ambulances 38 minutes a day; Midden (5 SEHs) and Noord (9 SEHs) an hour a day, Oost
(6 SEHs) 8 minutes, Noord-Holland/Flevoland 33, West 25, Zuidwest 34 and Zwolle 24. Euregio,
Brabant and Limburg did not share their data, so they have no figure. Source as read here:
Skipr, "SEH's gemiddeld 38 minuten per dag dicht" (March 2023), which quotes the letter; the
letter itself could not be retrieved from here.

Assumption: LNAZ names seven regions where the registry has eight networks without the three
missing; its "Noord-Holland/Flevoland" is read as both Netwerk Acute Zorg Noordwest (ROAZ02) and
SpoedzorgNet (ROAZ05), which share that figure.
"""

from __future__ import annotations

from capacity.coordinator.schemas import PublishedFigure

SOURCE = "LNAZ, letter to the Ministry of VWS (March 2023), as reported by Skipr"
URL = "https://www.skipr.nl/nieuws/sehs-gemiddeld-38-minuten-per-dag-dicht/"
PERIOD = "2023-01"


def _figure(minutes: float, name: str) -> PublishedFigure:
    return PublishedFigure(minutes_per_day=minutes, period=PERIOD, name=name, source=SOURCE, url=URL)


NATIONAL = _figure(38, "Nederland")
BY_REGION: dict[str, PublishedFigure] = {
    "ROAZ01": _figure(60, "Noord"),
    "ROAZ02": _figure(33, "Noord-Holland/Flevoland"),
    "ROAZ04": _figure(34, "Zuidwest"),
    "ROAZ05": _figure(33, "Noord-Holland/Flevoland"),
    "ROAZ06": _figure(25, "West"),
    "ROAZ08": _figure(60, "Midden"),
    "ROAZ09": _figure(24, "Zwolle"),
    "ROAZ10": _figure(8, "Oost"),
}
"""LNAZ's figure for the region in January 2023; Euregio (ROAZ03), Brabant (ROAZ07) and Limburg
(ROAZ11) published none."""
