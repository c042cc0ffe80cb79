"""The medication a prescription or a dispense names: for display, every identifier it carries, and the
comparison that matches a dispense with its prescription (in normal form)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from adapters.rx.errors import FhirInvalid
from adapters.rx.fhir import get as _get
from adapters.rx.fhir import medication as _medication_concept


def medication(obj: dict[str, Any]) -> dict[str, str]:
    """The medication for display: the first coding, else the text, else the reference. A contained
    ``Medication`` (``medicationReference`` to ``#id``) counts by its ``code``, like a CodeableConcept."""
    concept, ref = _medication_concept(obj)
    coding = _get(concept, "coding", 0)
    if isinstance(coding, dict):
        return {k: v for k in ("system", "code", "display") if isinstance(v := coding.get(k), str)}
    text = _get(concept, "text")
    if isinstance(text, str):
        return {"text": text}
    if isinstance(ref, str):
        return {"reference": ref}
    raise FhirInvalid("medication[x] is required", details={"field": "medication[x]"})


def medication_ids(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything that names the medication, to match a dispense with its prescription: every coding's
    ``system|code``, the text, the reference (``medication`` keeps only the first, for display). A
    contained Medication's code counts as the resource's own CodeableConcept: a prescription coded inline
    matches a dispense naming the same codes through a contained Medication."""
    concept, ref = _medication_concept(obj)
    codings = _get(concept, "coding")
    codes = sorted(
        {
            f"{c['system']}|{c['code']}"
            for c in (codings if isinstance(codings, list) else [])
            if isinstance(c, dict) and isinstance(c.get("system"), str) and isinstance(c.get("code"), str)
        }
    )
    ids: dict[str, Any] = {"codes": codes}
    for key, value in (("text", _get(concept, "text")), ("reference", ref)):
        if isinstance(value, str):
            ids[key] = value
    return ids


def ids_of(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The medication ids of an issue's facts (facts stored before ``medication_ids`` existed: from the
    first coding, text or reference they kept)."""
    ids = facts.get("medication_ids")
    if isinstance(ids, dict):
        return ids
    med = facts.get("medication")
    med = med if isinstance(med, dict) else {}
    out: dict[str, Any] = {
        "codes": [f"{med['system']}|{med['code']}"] if "system" in med and "code" in med else []
    }
    out.update({k: med[k] for k in ("text", "reference") if k in med})
    return out


def _text(value: Any) -> str | None:
    """Free text in normal form: NFKC, case-folded, whitespace runs as one space, trimmed."""
    if not isinstance(value, str):
        return None
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split()) or None


def normal_medication(ids: Mapping[str, Any]) -> tuple[str, Any]:
    """A medication in normal form: its codes by system when coded (``{system: (code, …)}``), else its
    reference, else its text (NFKC, case-folded, whitespace collapsed)."""
    by_system: dict[str, set[str]] = {}
    for entry in ids.get("codes") or []:
        system, _, code = str(entry).rpartition("|")
        by_system.setdefault(system, set()).add(code)
    if by_system:
        return "codes", {system: tuple(sorted(codes)) for system, codes in by_system.items()}
    if isinstance(ids.get("reference"), str):
        return "reference", ids["reference"]
    return "text", _text(ids.get("text"))


def same_medication(issued: Mapping[str, Any], dispensed: Mapping[str, Any]) -> bool:
    """The prescribed medication, compared in normal form (:func:`normal_medication`). When either side is
    coded both must be, with the same codes in every code system both carry (at least one): a dispense may
    list fewer systems (the national drug code without the ATC code), never another code, and a code never
    matches mere text (morphine's code beside the text "amoxicillin"). Otherwise the same reference, or the
    same text."""
    (issued_form, issued_value), (dispensed_form, dispensed_value) = (
        normal_medication(issued),
        normal_medication(dispensed),
    )
    if issued_form != dispensed_form:
        return False
    if issued_form != "codes":
        return bool(issued_value is not None and issued_value == dispensed_value)
    common = issued_value.keys() & dispensed_value.keys()
    return bool(common) and all(issued_value[s] == dispensed_value[s] for s in common)
