"""Station classes (HJ 212-2017 system code ``ST``) and the pollutant codes each may send.

HJ 212-2017 codes a pollutant by what it is measured in (Appendix B): ``w`` and five digits in water
(``w01018`` COD), ``a`` and five digits in air (``a21026`` SO2). A station of a water class sending an air
code (or the reverse, or a code of neither form: upper case ``W01018``, HJ 212-2005's ``011``) would name a
pollutant no limit of its class covers, so its value could never raise an exceedance: refused
(``POLLUTANT_CLASS_MISMATCH``). Classes whose readings are not of one medium (noise, soil, process
monitoring, system interaction …) are held to no family.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from adapters.env.errors import PollutantClassMismatch

WATER = "w"
AIR = "a"
# ST (HJ 212-2017 表5 系统编码) -> the code family its readings are in.
CODE_FAMILY: Mapping[str, str] = {
    "21": WATER,  # 地表水质量监测 surface water quality
    "22": AIR,  # 空气质量监测 ambient air quality
    "24": WATER,  # 地下水质量监测 groundwater quality
    "27": AIR,  # 挥发性有机物监测 VOCs (in air)
    "31": AIR,  # 大气环境污染源 air pollution source (flue gas)
    "32": WATER,  # 地表水体环境污染源 pollution source discharging to surface water
    "33": WATER,  # 地下水体环境污染源 pollution source discharging to groundwater
}
_CODE = re.compile(r"([aw])[0-9]{5}")


def family_of(codes: Iterable[str]) -> str | None:
    """The one family every code is of (None: none, or they are of two)."""
    found = {m[1] if (m := _CODE.fullmatch(code)) else "" for code in codes}
    return found.pop() if len(found) == 1 and "" not in found else None


def check_codes(st: str, codes: Iterable[str]) -> None:
    """Every pollutant code of a reading of class ``st`` is of the class's family."""
    family = CODE_FAMILY.get(st)
    if family is None:
        return
    for code in codes:
        if family_of((code,)) != family:
            raise PollutantClassMismatch(
                f"pollutant {code} is not a {'water' if family == WATER else 'air'} code: a station of "
                f"class ST {st} sends HJ 212-2017 codes {family} + 5 digits",
                details={"field": "pollutants", "code": code, "st": st, "family": family},
            )
