"""Drug traceability codes (药品追溯码) on a dispense: one per box handed over, each checked by form and
normalised (``provenance.trace_code``, where the forms are described), distinct, one per box. A dispense
counted in boxes must list every box's code (institutions collect and upload them from 2026-01-01); one in
tablets or ml cannot be counted against boxes, so its codes stay optional."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from provenance.errors import TraceCodeInvalid
from provenance.trace_code import TRACE_CODE_URL, digest, gtin_check_ok, identity, normalise

__all__ = [
    "BOX_UNITS",
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
# Units (display text or UCUM annotation, compared after unit_key) in which a dispensed quantity counts
# packages that each carry a code (最小销售包装; docs/design/rx-chain.md says why these): then the codes
# number exactly the quantity.
_PACKAGES = (
    *("box", "boxes", "bx", "pack", "packs", "package", "packages", "packet", "packets"),
    *("bottle", "bottles", "vial", "vials", "tube", "tubes", "can", "cans"),
)
BOX_UNITS = frozenset(
    (*_PACKAGES, *(f"{{{u}}}" for u in _PACKAGES), "盒", "盒装", "瓶", "瓶装", "支", "管", "罐", "罐装")
)


def unit_key(unit: str) -> str:
    """A unit as compared with :data:`BOX_UNITS`: NFKC (full-width letters), case-folded, trimmed."""
    return unicodedata.normalize("NFKC", unit).casefold().strip()


def counts_packages(units: tuple[str | None, str | None]) -> bool:
    """Whether either unit (display text, coded unit) counts packages that each carry a code."""
    return any(isinstance(u, str) and unit_key(u) in BOX_UNITS for u in units)


def _bad(message: str, field: str) -> TraceCodeInvalid:
    return TraceCodeInvalid(message, details={"field": field})


def trace_codes(obj: Mapping[str, Any], quantity: float, units: tuple[str | None, str | None]) -> list[str]:
    """The normal forms of the dispense's codes (``extension`` entries with :data:`TRACE_CODE_URL`), in
    the order given; distinct, and exactly as many as the boxes dispensed when either of ``units`` (the
    quantity's display unit and its coded unit) counts boxes, none listed included."""
    found = [
        (i, e)
        for i, e in enumerate(obj.get("extension") or [])
        if isinstance(e, dict) and e.get("url") == TRACE_CODE_URL
    ]
    if len(found) > MAX_CODES:
        raise _bad(f"at most {MAX_CODES} traceability codes in one dispense", "extension")
    codes: list[str] = []
    boxes: set[str] = set()
    for i, ext in found:
        field = f"extension.{i}.valueString"
        if set(ext) != {"url", "valueString"}:
            raise _bad("a traceability code extension carries one valueString", field)
        normal = normalise(ext["valueString"], field)[1]
        if identity(normal) in boxes:  # one box in two forms too: another batch or expiry, leading zeros
            raise _bad("a box's traceability code is listed twice in this dispense", field)
        boxes.add(identity(normal))
        codes.append(normal)
    if counts_packages(units) and len(codes) != quantity:
        raise _bad(
            f"{len(codes)} traceability codes for {quantity:g} boxes: one code per box handed over",
            "extension",
        )
    return codes
