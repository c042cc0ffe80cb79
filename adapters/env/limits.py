"""The limits a station class is held to (``alerts.py``; sources in ``docs/design/sensor-batches.md``,
Alerts), by HJ 212-2017 system code (ST) -> pollutant code -> averaging time (``hour``/``day``) -> limit.

A limit is a maximum (a number) or a ``Range``: a minimum (dissolved oxygen), or both ends (pH 6-9).
``EnvWorkflow(limits=...)`` replaces the whole table (e.g. another water class, a sector's discharge
standard). Classes without an entry raise flag alerts only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Range:
    """A limit with a lower end: a value below ``low`` or above ``high`` is outside it."""

    low: float | None = None
    high: float | None = None


Limit = float | Range  # a number is a maximum
Limits = Mapping[str, Mapping[str, Mapping[str, Limit]]]

AMBIENT_AIR = "22"  # 空气质量监测
SURFACE_WATER = "21"  # 地表水质量监测
SURFACE_WATER_SOURCE = "32"  # 地表水体环境污染源: a discharge to surface water

# GB 3095-2012 grade II (二级) concentration limits: µg/m³, CO in mg/m³.
GB3095_GRADE_II: Mapping[str, Mapping[str, Limit]] = {
    "a21026": {"hour": 500.0, "day": 150.0},  # SO2 (表1)
    "a21004": {"hour": 200.0, "day": 80.0},  # NO2 (表1)
    "a21005": {"hour": 10.0, "day": 4.0},  # CO (表1)
    "a05024": {"hour": 200.0},  # O3 1-hour mean (表1; its 8-hour mean is no HJ 212 interval)
    "a34002": {"day": 150.0},  # PM10 (表1)
    "a34004": {"day": 75.0},  # PM2.5 (表1)
    "a34001": {"day": 300.0},  # TSP (表2)
    "a21002": {"hour": 250.0, "day": 100.0},  # NOx (表2)
}


def _always(limit: Limit) -> Mapping[str, Limit]:
    """A water limit holds each value whatever its averaging time (the standards give one value)."""
    return {"hour": limit, "day": limit}


PH = Range(6.0, 9.0)  # pH 6-9 (dimensionless): GB 3838 every class, GB 8978 every discharger

# GB 3838-2002 表1 Class III (III类: drinking-water source grade-2 protection zones, fisheries, swimming), a
# river section: mg/L. Total nitrogen (lakes and reservoirs only) and TP's lake value are not applied.
GB3838_CLASS_III: Mapping[str, Mapping[str, Limit]] = {
    "w01001": _always(PH),
    "w01009": _always(Range(low=5.0)),  # dissolved oxygen, at least
    "w01019": _always(6.0),  # permanganate index (CODMn)
    "w01018": _always(20.0),  # COD
    "w01017": _always(4.0),  # BOD5
    "w21003": _always(1.0),  # NH3-N
    "w21011": _always(0.2),  # total phosphorus (as P), rivers
    "w22001": _always(0.05),  # petroleum
    "w23002": _always(0.005),  # volatile phenols
    "w21016": _always(0.2),  # cyanide
    "w21019": _always(0.2),  # sulfide
    "w21017": _always(1.0),  # fluoride (as F-)
    "w19002": _always(0.2),  # anionic surfactants
}

# GB 8978-1996 grade 1 (一级) for "other dischargers" (其他排污单位) built from 1998 (表4), and the
# first-class pollutants' one limit (表1), each item HJ 212-2017 names a code for, in that code's default
# unit: mg/L, the first-class metals but total chromium, nickel and silver in µg/L (0.5 mg/L of Cr(VI) is
# 500 µg/L), the radioactivities in Bq/L. DO is no discharge limit; its phosphate (as P) is not total
# phosphorus; colour is a dilution factor where HJ 212's is in degrees; alkyl mercury's "not detectable" is no
# number. HJ 212-2017's code table is "可扩充" (open): items it does not list carry HJ 525-2009's water
# pollutant codes (its own are HJ 525's), in mg/L.
GB8978_GRADE_1: Mapping[str, Mapping[str, Limit]] = {
    "w01001": _always(PH),
    "w01012": _always(70.0),  # suspended solids
    "w01017": _always(20.0),  # BOD5
    "w01018": _always(100.0),  # COD
    "w22001": _always(5.0),  # petroleum
    "w22002": _always(10.0),  # animal and vegetable oils (HJ 525-2009's code; HJ 212-2017's table is open)
    "w25023": _always(2.0),  # nitrobenzenes (HJ 525-2009's code)
    "w23002": _always(0.5),  # volatile phenols
    "w21016": _always(0.5),  # total cyanide
    "w21019": _always(1.0),  # sulfide
    "w21003": _always(15.0),  # NH3-N
    "w21017": _always(10.0),  # fluoride
    "w19002": _always(5.0),  # anionic surfactants (LAS)
    "w20122": _always(0.5),  # total copper
    "w20123": _always(2.0),  # total zinc
    "w20124": _always(2.0),  # total manganese
    # 表1, first-class pollutants (every discharger, at the workshop outlet)
    "w20111": _always(50.0),  # total mercury, µg/L (0.05 mg/L)
    "w20115": _always(100.0),  # total cadmium, µg/L (0.1 mg/L)
    "w20116": _always(1.5),  # total chromium
    "w20117": _always(500.0),  # hexavalent chromium, µg/L (0.5 mg/L)
    "w20119": _always(500.0),  # total arsenic, µg/L (0.5 mg/L)
    "w20120": _always(1000.0),  # total lead, µg/L (1.0 mg/L)
    "w20121": _always(1.0),  # total nickel
    "w25043": _always(0.03),  # benzo(a)pyrene, µg/L (0.00003 mg/L)
    "w20127": _always(5.0),  # total beryllium, µg/L (0.005 mg/L)
    "w20126": _always(0.5),  # total silver
    "w03001": _always(1.0),  # gross alpha, Bq/L
    "w03002": _always(10.0),  # gross beta, Bq/L
}

DEFAULT_LIMITS: Limits = {
    AMBIENT_AIR: GB3095_GRADE_II,
    SURFACE_WATER: GB3838_CLASS_III,
    SURFACE_WATER_SOURCE: GB8978_GRADE_1,
}
