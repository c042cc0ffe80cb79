"""Drug traceability codes (药品追溯码) on a dispense: one per box handed over, each checked by form and
normalised (``provenance.trace_code``, where the forms are described), distinct, one per box. A dispense
counted in packages must list every package's code (institutions collect and upload them from
2026-01-01); one in dose units (tablets, ml: :data:`DOSE_UNITS`) lists none, as its quantity cannot bound
them (docs/design/rx-chain.md)."""

from __future__ import annotations

import calendar
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from adapters.rx.errors import TraceCodeDoseUnits, TraceCodeExpired
from provenance.errors import TraceCodeInvalid
from provenance.trace_code import TRACE_CODE_URL, digest, gtin_check_ok, identity, normalise

__all__ = [
    "DOSE_UNITS",
    "MAX_CODES",
    "TRACE_CODE_URL",
    "counts_packages",
    "digest",
    "gtin_check_ok",
    "identity",
    "normalise",
    "trace_codes",
]

MAX_CODES = 100  # a dispense hands over at most this many boxes (each costs a storage slot on chain)
# Units (display text or coded unit, compared after unit_key) of a dose or an amount of content: a quantity
# in them does not count packages, so it lists no codes. An allow-list (docs/design/rx-chain.md says where
# these come from): any other unit, a look-alike or a new package word included, counts packages.
_DOSES = (
    *("tab", "tabs", "tablet", "tablets", "cap", "caps", "capsule", "capsules", "pill", "pills"),
    *("drop", "drops", "puff", "puffs", "patch", "patches", "sachet", "sachets", "dose", "doses"),
    *("suppository", "suppositories", "ampoule", "ampoules", "ampule", "ampules"),
)
DOSE_UNITS = frozenset(
    (
        *_DOSES,
        *(f"{{{u}}}" for u in (*_DOSES, "tbl", "actuat")),
        *("[drp]", "mg", "g", "ug", "μg", "mcg", "ng", "ml", "l", "iu", "[iu]", "u", "mmol"),
        *("片", "粒", "丸", "袋", "贴", "枚", "喷", "揿", "滴"),  # tablet capsule pill sachet patch … drop
        *("克", "毫克", "微克", "毫升", "升", "单位", "国际单位"),
    )
)


def unit_key(unit: str) -> str:
    """A unit as compared with :data:`DOSE_UNITS`: NFKC (full-width letters, µ), case-folded, trimmed."""
    return unicodedata.normalize("NFKC", unit).casefold().strip()


def counts_packages(units: tuple[str | None, str | None]) -> bool:
    """Whether the quantity counts packages that each carry a code: unless every unit it has (display text,
    coded unit) is a dose unit. A quantity with no unit counts items: packages."""
    given = [u for u in units if isinstance(u, str)]
    return not given or any(unit_key(u) not in DOSE_UNITS for u in given)


def expiry(normal: str, on: date) -> date | None:
    """The last day of a GS1 box's (17) expiry, its century the one nearest ``on`` (GS1 General
    Specifications 7.12: 51 to 99 years ahead is the previous century, 50 to 99 back the next); day 00 is
    the month's last day. None without (17)."""
    at = normal.find("(17)")
    if not normal.startswith("(") or at < 0:
        return None
    yy, mm, dd = (int(normal[at + 4 + i : at + 6 + i]) for i in (0, 2, 4))
    ahead = yy - on.year % 100
    year = on.year - on.year % 100 + yy + (-100 if ahead >= 51 else 100 if ahead <= -50 else 0)
    last = calendar.monthrange(year, mm)[1]
    return date(year, mm, min(dd, last) if dd else last)


def _bad(message: str, field: str) -> TraceCodeInvalid:
    return TraceCodeInvalid(message, details={"field": field})


def trace_codes(
    obj: Mapping[str, Any],
    quantity: float,
    units: tuple[str | None, str | None],
    handed_over: date,
    accepted: date | None = None,
) -> list[str]:
    """The normal forms of the dispense's codes (``extension`` entries with :data:`TRACE_CODE_URL`), in
    the order given; distinct, none expired by the day ``handed_over`` nor by the day ``accepted`` (when
    the gateway records it: a backdated hand-over does not bring an expired box back), and exactly as many
    as the packages dispensed when ``units`` (the quantity's display unit and its coded unit) count
    packages, none in dose units (TRACE_CODE_DOSE_UNITS: a one-tablet dispense listing 100 boxes would
    mark them all dispensed)."""
    found = [
        (i, e)
        for i, e in enumerate(obj.get("extension") or [])
        if isinstance(e, dict) and e.get("url") == TRACE_CODE_URL
    ]
    if len(found) > MAX_CODES:
        raise _bad(f"at most {MAX_CODES} traceability codes in one dispense", "extension")
    packages = counts_packages(units)
    if found and not packages:
        raise TraceCodeDoseUnits(
            f"a dispense in dose units ({units[0] or units[1]}) lists no traceability codes: a code names a "
            "package, and a quantity in doses cannot bound them; dispense in the package unit to hand over "
            "packages",
            details={"field": "extension", "unit": units[0] or units[1]},
        )
    codes: list[str] = []
    boxes: set[str] = set()
    for i, ext in found:
        field = f"extension.{i}.valueString"
        if set(ext) != {"url", "valueString"}:
            raise _bad("a traceability code extension carries one valueString", field)
        normal = normalise(ext["valueString"], field)[1]
        if identity(normal) in boxes:  # one box in two forms too: another batch or expiry, leading zeros
            raise _bad("a box's traceability code is listed twice in this dispense", field)
        last = expiry(normal, handed_over)
        if last is not None and max(handed_over, accepted or handed_over) > last:
            raise TraceCodeExpired(
                f"the box {normal} expired on {last.isoformat()}, before it was handed over "
                f"({handed_over.isoformat()}) or recorded ({(accepted or handed_over).isoformat()})",
                details={"field": field, "code": normal, "expiry": last.isoformat()},
            )
        boxes.add(identity(normal))
        codes.append(normal)
    if packages and len(codes) != quantity:
        raise _bad(
            f"{len(codes)} traceability codes for {quantity:g} packages: one code per package handed over",
            "extension",
        )
    return codes
