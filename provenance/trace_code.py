"""Drug traceability codes (药品追溯码): each box's code checked by form and normalised to one canonical
string whose SM3 digest ``Prescriptions`` stores (never the code itself). Here, not in the rx adapter, because
the CLI and the SDK normalise a code before they look it up (``provenance trace code:<code>``).

Forms (docs/design/rx-chain.md says which rules were verified against public documentation):

- ``nmpa20``: the 20-digit codes of the 码上放心 platform (formerly 中国药品电子监管码). Their inner
  structure (product prefix, serial, the platform's check) is not publicly specified: only length and
  digits are checked.
- ``gs1``: a GS1 element string as scanned from a GS1 DataMatrix, in the human-readable form with
  parentheses (``(01)06901234567892(17)271231(10)B123(21)S0001``) or raw (an optional ``]d2`` symbology
  identifier, FNC1 sent as ASCII GS, 0x1D). AI (01) GTIN-14 with its mod-10 check digit and (21) serial are
  required (a serial makes the box unique); (17) expiry YYMMDD and (10) batch are optional. Normal form:
  the parenthesised string in the order (01)(17)(10)(21). Values use GS1's character set 82.
- ``numeric``: a manufacturer's own numeric code: 16 to 30 digits other than 20.

A digits-only scan that reads as a GS1 element string (``01`` + a GTIN-14 with a valid check digit, then
AIs read here, (21) included) is GS1, not a maker's number: a DataMatrix read without its FNC1s.

A box's :func:`identity` (what :func:`digest` hashes: the chain's record, the workflow keys, "listed twice",
the look-up) is not its normal form: (17) expiry and (10) batch describe a GS1 box but do not name it, and a
numeric code's leading zeros are insignificant, so one box has one identity whatever form it is written in.
"""

from __future__ import annotations

import re
from typing import Any

from provenance.crypto.sm3 import sm3_hex
from provenance.errors import TraceCodeInvalid

# The MedicationDispense extension carrying one box's code (valueString), repeated once per box.
TRACE_CODE_URL = "urn:shancheng-provenance:fhir:drug-trace-code"

_GS = "\x1d"
_CSET82 = r"[!\"%&'*+,\-./0-9:;<=>?A-Z_a-z]"
_VALUE = re.compile(rf"{_CSET82}{{1,20}}")
_PAREN = re.compile(r"\((\d{2})\)([^()]*)")
_FIXED = {"01": 14, "17": 6}  # predefined lengths of the AIs read here; (10) and (21) are variable
_KNOWN = ("01", "17", "10", "21")


def gtin_check_ok(gtin: str) -> bool:
    """GS1 mod-10: weights 3,1,3,… from the digit left of the check digit."""
    digits = [int(c) for c in gtin]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
    return (10 - total % 10) % 10 == digits[-1]


def _bad(message: str, field: str) -> TraceCodeInvalid:
    return TraceCodeInvalid(message, details={"field": field})


def _split_raw(code: str, field: str) -> dict[str, str]:
    elements: dict[str, str] = {}
    rest = code.removeprefix("]d2")
    while rest:
        rest = rest.removeprefix(_GS)
        ai, rest = rest[:2], rest[2:]
        if ai not in _KNOWN:
            raise _bad(f"GS1 element string: AI ({ai}) is not one of (01) (17) (10) (21)", field)
        if ai in _FIXED:
            value, rest = rest[: _FIXED[ai]], rest[_FIXED[ai] :]
        else:
            value, _, rest = rest.partition(_GS)
        if ai in elements:
            raise _bad(f"GS1 element string: AI ({ai}) twice", field)
        elements[ai] = value
    return elements


def _split_paren(code: str, field: str) -> dict[str, str]:
    elements: dict[str, str] = {}
    pos = 0
    for m in _PAREN.finditer(code):
        if m.start() != pos or m.group(1) not in _KNOWN or m.group(1) in elements:
            raise _bad("GS1 element string: AIs (01) (17) (10) (21), each once, in parentheses", field)
        elements[m.group(1)] = m.group(2)
        pos = m.end()
    if pos != len(code):
        raise _bad("GS1 element string: text outside the (AI)value pairs", field)
    return elements


def _gs1(code: str, field: str) -> str:
    elements = _split_paren(code, field) if code.startswith("(") else _split_raw(code, field)
    gtin, serial = elements.get("01"), elements.get("21")
    if gtin is None or serial is None:
        raise _bad("a GS1 traceability code carries (01) GTIN and (21) serial", field)
    if not re.fullmatch(r"\d{14}", gtin) or not gtin_check_ok(gtin):
        raise _bad("(01) is a GTIN-14 with its mod-10 check digit", field)
    expiry = elements.get("17")
    if expiry is not None and not re.fullmatch(r"\d{2}(0[1-9]|1[0-2])(0\d|[12]\d|3[01])", expiry):
        raise _bad("(17) expiry is YYMMDD", field)
    for ai in ("10", "21"):
        value = elements.get(ai)
        if value is not None and not _VALUE.fullmatch(value):
            raise _bad(f"({ai}) is 1 to 20 characters of GS1's character set 82", field)
    return "".join(f"({ai}){elements[ai]}" for ai in _KNOWN if ai in elements)


def normalise(code: Any, field: str = "code") -> tuple[str, str]:
    """``(form, normal form)`` of one scanned code, or TRACE_CODE_INVALID naming ``field``."""
    if not isinstance(code, str) or not code or len(code) > 100:
        raise _bad("a traceability code is a non-empty string of at most 100 characters", field)
    code = code.strip()
    if code.isdigit() and code.isascii():
        if code.startswith("01"):
            try:
                return "gs1", _gs1(code, field)
            except TraceCodeInvalid:
                pass  # not a GS1 element string: a numeric code that starts with 01
        if len(code) == 20:
            return "nmpa20", code
        if 16 <= len(code) <= 30:
            return "numeric", code
        raise _bad("a numeric traceability code has 20 digits (码上放心) or 16 to 30 (a maker's own)", field)
    if code.startswith(("(", "]d2", "01")):
        return "gs1", _gs1(code, field)
    raise _bad("not a traceability code: 20 digits, a GS1 element string, or a maker's numeric code", field)


def identity(normal: str) -> str:
    """The box a normal form names: ``(01)<gtin>(21)<serial>`` for GS1, a numeric code's digits without
    leading zeros (``0`` for none left)."""
    if normal.startswith("("):
        elements = dict(_PAREN.findall(normal))
        return f"(01){elements['01']}(21){elements['21']}"
    return normal.lstrip("0") or "0"


def digest(normal: str) -> str:
    """SM3 of the box's :func:`identity`, hex: what the chain stores for the box."""
    return sm3_hex(identity(normal).encode("ascii"))


def listed_codes(dispense: Any) -> list[str]:
    """The normal forms of the codes a MedicationDispense lists (its :data:`TRACE_CODE_URL` extensions),
    in order; a value of no accepted form is left out (an accepted dispense holds none)."""
    out: list[str] = []
    extensions = dispense.get("extension") if isinstance(dispense, dict) else None
    for ext in extensions if isinstance(extensions, list) else []:
        if isinstance(ext, dict) and ext.get("url") == TRACE_CODE_URL:
            try:
                out.append(normalise(ext.get("valueString"))[1])
            except TraceCodeInvalid:
                continue
    return out
