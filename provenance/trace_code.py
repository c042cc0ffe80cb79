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

A digits-only scan is one digit string, its leading zeros insignificant: when it reads as a GS1 element
string (the AIs read here, (01) with a valid check digit and (21) included, in any order, a leading ``0``
of ``01`` restored) it is GS1, not a maker's number or a 码上放心 code, whatever its length: a DataMatrix
read without its FNC1s. A GS1 string in which a variable-length element may end before
the next AI (``01…21S10B``: serial ``S10B``, or serial ``S`` and batch ``B``) reads as more than one box:
TRACE_CODE_AMBIGUOUS, never a guess (docs/design/rx-chain.md). FNC1s (GS) do not lift this: each
GS-delimited segment is read the same way, as a GS only says where one value ended (``01…<GS>21S10B``).

A box's :func:`identity` (what :func:`digest` hashes: the chain's record, the workflow keys, "listed twice",
the look-up) is not its normal form: (17) expiry and (10) batch describe a GS1 box but do not name it, and a
numeric code's leading zeros are insignificant, so one box has one identity whatever form it is written in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from provenance.crypto.sm3 import keyed_hex, sm3_hex
from provenance.errors import TraceCodeAmbiguous, TraceCodeInvalid

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


def _checked(elements: dict[str, str], field: str) -> str:
    """The normal form of one reading's elements, or TRACE_CODE_INVALID."""
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


def _splits(rest: str, elements: dict[str, str]) -> Iterator[dict[str, str]]:
    """Every way to read ``rest`` (no GS) as AIs read here, after ``elements``: a variable-length value may
    end anywhere (1-20 characters), as a scan that lost its FNC1s does not say where; an AI read again must
    repeat its value (GS1 allows a duplicate AI with the same value). Bounded: only the first (10) and (21)
    branch, 20 ways each."""
    if not rest:
        yield elements
        return
    ai, rest = rest[:2], rest[2:]
    if ai not in _KNOWN:
        return
    seen = elements.get(ai)
    ends = [len(seen)] if seen is not None else [_FIXED[ai]] if ai in _FIXED else range(1, 21)
    for end in ends:
        if end <= len(rest) and seen in (None, rest[:end]):
            yield from _splits(rest[end:], {**elements, ai: rest[:end]})


def _segments(segments: list[str], elements: dict[str, str]) -> Iterator[dict[str, str]]:
    """Every reading of GS-delimited ``segments``: each segment read by :func:`_splits`, as a GS ends a
    value but an FNC1 missing inside a segment may have ended one too (F6-1)."""
    if not segments:
        yield elements
        return
    for read in _splits(segments[0], elements):
        yield from _segments(segments[1:], read)


def _readings(strings: tuple[str, ...]) -> set[str]:
    """The normal forms of every valid GS1 reading of ``strings`` (alternatives, each GS-delimited)."""
    out: set[str] = set()
    for string in strings:
        for elements in _segments(string.split(_GS), {}):
            try:
                out.add(_checked(elements, ""))
            except TraceCodeInvalid:
                continue
    return out


def _one(readings: set[str], field: str) -> str | None:
    """The one reading, None for none; TRACE_CODE_AMBIGUOUS for two boxes (or two batches) in one string."""
    if len(readings) > 1:
        raise TraceCodeAmbiguous(
            "a GS1 element string in which a variable-length value may end before another AI (no FNC1/GS "
            "there) reads as more than one box: send the human-readable form (01)…(21)…",
            details={"field": field, "readings": sorted(readings)},
        )
    return next(iter(readings), None)


def _gs1(code: str, field: str) -> str:
    if code.startswith("("):
        return _checked(_split_paren(code, field), field)
    # With FNC1s (GS) too: a GS ends a value, but a segment between two may still hide an ended one.
    return _one(_readings((code.removeprefix("]d2"),)), field) or _checked(_split_raw(code, field), field)


def normalise(code: Any, field: str = "code") -> tuple[str, str]:
    """``(form, normal form)`` of one scanned code, or TRACE_CODE_INVALID (TRACE_CODE_AMBIGUOUS) naming
    ``field``."""
    if not isinstance(code, str) or not code or len(code) > 100:
        raise _bad("a traceability code is a non-empty string of at most 100 characters", field)
    code = code.strip()
    if code.isdigit() and code.isascii():
        # One digit string: "0" + a GS1 string (a reader padding to a field width) is that GS1 string.
        digits = code.lstrip("0")
        gs1 = _one(_readings((digits, "0" + digits)), field)
        if gs1 is not None:
            return "gs1", gs1
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
    """SM3 of the box's :func:`identity`, hex: the gateway's key of the box (its workflow state), and what
    the chain stored for a box dispensed before the keyed form (:func:`chain_digest`)."""
    return sm3_hex(identity(normal).encode("ascii"))


# The form of a box's key on chain, versioned by its label (docs/formats.md, "Trace codes on chain").
CHAIN_DIGEST_LABEL = b"shancheng-provenance/chain-key@v1\n"


def chain_digest(network_key: bytes, normal: str) -> str:
    """``HMAC-SM3(network key, CHAIN_DIGEST_LABEL ‖ "trace-code" ‖ NUL ‖ identity)``, hex: what
    ``Prescriptions`` stores for the box. A code printed on the box is no use for finding its dispense on
    the public chain without the network's key (:mod:`provenance.network_key`)."""
    return keyed_hex(network_key, CHAIN_DIGEST_LABEL, "trace-code", identity(normal))


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
