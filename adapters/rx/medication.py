"""The medication a prescription or a dispense names: for display, every identifier it carries, and the
comparison that matches a dispense with its prescription (in normal form)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

import opencc

from adapters._common import FOLD, HAN_DIGITS
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
    ``system|code`` and ``display``, the text, the reference (``medication`` keeps only the first, for
    display), and a contained Medication's ``form``, ``ingredient`` and ``amount`` (``details``). A contained
    Medication's code counts as the resource's own CodeableConcept: a prescription coded inline matches a
    dispense naming the same codes through a contained Medication."""
    concept, ref = _medication_concept(obj)
    codings = _get(concept, "coding")
    codings = [c for c in (codings if isinstance(codings, list) else []) if isinstance(c, dict)]
    # A coding without a system counts under the system "" (its own, which a prescription coded in a
    # system does not carry): skipping it let {"code": "7052"} ride beside the prescribed code.
    codes = sorted({f"{_system(c)}|{c['code']}" for c in codings if isinstance(c.get("code"), str)})
    versions = sorted(
        {f"{_system(c)}|{c.get('code')}|{c['version']}" for c in codings if isinstance(c.get("version"), str)}
    )
    # medicationReference.display names the drug as much as a coding's display does.
    shown = [c.get("display") for c in codings] + [_get(obj, "medicationReference", "display")]
    displays = sorted({d for d in shown if isinstance(d, str)})
    ids: dict[str, Any] = {"codes": codes, "displays": displays}
    if versions:
        ids["versions"] = versions
    identifier = _get(obj, "medicationReference", "identifier")
    if isinstance(identifier, dict):
        ids["identifier"] = f"{identifier.get('system') or ''}|{identifier.get('value') or ''}"
    for key, value in (("text", _get(concept, "text")), ("reference", ref)):
        if isinstance(value, str):
            ids[key] = value
    details = {k: v for k, v in (_contained_medication(obj) or {}).items() if k in DRUG_DETAILS}
    if details:
        ids["details"] = details
    return ids


def _system(coding: Mapping[str, Any]) -> str:
    system = coding.get("system")
    return system if isinstance(system, str) else ""


# What a contained Medication says about the drug itself (R4 Medication): checkable by equality without a
# drug database. ``batch``, ``manufacturer`` and ``status`` describe the pharmacy's stock: a dispense may
# add them.
DRUG_DETAILS = ("form", "ingredient", "amount")


def _contained_medication(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The contained Medication a ``medicationReference`` to ``#id`` names (``fhir.medication`` has checked
    that it exists, once)."""
    ref = _get(obj, "medicationReference", "reference")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    for res in obj.get("contained") or []:
        if isinstance(res, dict) and res.get("resourceType") == "Medication" and res.get("id") == ref[1:]:
            return res
    return None


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


def normal_text(value: Any) -> str | None:
    """Free text in normal form: NFKC, case-folded, whitespace runs as one space, trimmed."""
    if not isinstance(value, str):
        return None
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split()) or None


# OpenCC's Traditional-to-Simplified conversion (characters and phrases): 解放碑大藥房 is 解放碑大药房;
# before it, Japanese shinjitai to traditional (jp2t): 解放碑大薬房 is 解放碑大藥房. For comparison only: the
# fold is wider than Chinese usage (予 and 豫 meet), which at worst refuses a display, never admits one.
_TRADITIONAL = opencc.OpenCC("jp2t")
_SIMPLIFIED = opencc.OpenCC("t2s")


class _Dropped(dict[int, int | None]):
    """The characters a name key drops (spaces, punctuation, controls and formats: categories Z, P, C), as
    a ``str.translate`` table filled as characters are met."""

    def __missing__(self, c: int) -> int | None:
        self[c] = None if unicodedata.category(chr(c))[0] in "ZPC" else c
        return self[c]


_DROPPED = _Dropped()


def name_key(value: Any) -> str:
    """A name as :func:`normal_text` compares it, in simplified characters, without its spaces,
    punctuation and invisible characters: "解放碑 大药房", "解放碑·大药房" and "解放碑大藥房" name the
    pharmacy 解放碑大药房, and so does Japanese shinjitai "解放碑大薬房" (a display may not name another
    organisation, even spaced out, in traditional characters or in shinjitai), with Han numerals as digits
    (``HAN_DIGITS``): "山城第1人民医院" names 山城第一人民医院; and as ``FOLD`` reads it: marks, variation
    selectors and blank letters dropped (解<U+FE00>放碑大药房), any script's digits as digits, look-alikes of
    ASCII letters and digits as one letter (山城第Ⅰ人民医院, FQOOO7 for FQ0007)."""
    text = unicodedata.normalize("NFKD", value) if isinstance(value, str) else ""  # accents as marks
    # OpenCC leaves ASCII as it is (most texts of a dispense: systems, codes, references): skipped.
    folded = text if text.isascii() else _SIMPLIFIED.convert(_TRADITIONAL.convert(text)).translate(HAN_DIGITS)
    return folded.translate(FOLD).casefold().translate(_DROPPED)


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
    return "text", normal_text(ids.get("text"))


def medication_mismatch(issued: Mapping[str, Any], dispensed: Mapping[str, Any]) -> str | None:
    """Why the dispensed medication is not the prescribed one, or ``None`` (docs/design/rx-chain.md).

    Compared in normal form (:func:`normal_medication`). When either side is coded both must be, with the
    same codes in every code system both carry (at least one), and no code system the prescription does not
    carry: a dispense may list fewer systems (the national drug code without the ATC code), never another
    code beside the prescribed one (RxNorm's morphine next to the amoxicillin code). Otherwise the same
    reference, or the same text; a coding without a system counts in a system of its own ("no system").
    Then the dispense says no more about the drug than the prescription: a ``medicationReference``
    identifier is the prescription's, its text, coding displays and reference display are words the
    prescription uses (normal form), its coding versions are the prescription's, and a contained
    Medication's form, ingredients and amount are stated identically by the prescription. Facts from
    before the displays were kept (no ``displays``) are compared by code, reference or text only."""
    (issued_form, issued_value), (dispensed_form, dispensed_value) = (
        normal_medication(issued),
        normal_medication(dispensed),
    )
    another = (
        "dispense names another medication than the prescription (compared in normal form: the same "
        "codings when either is coded, else the same text)"
    )
    if issued_form != dispensed_form:
        return another
    if issued_form != "codes":
        if issued_value is None or issued_value != dispensed_value:
            return another
    else:
        extra = sorted(dispensed_value.keys() - issued_value.keys())
        if extra:
            system = f"the code system {extra[0]!r}" if extra[0] else "no code system"
            return (
                f"dispense carries a coding in {system}, which the prescription does not carry: each coding "
                "must be one of the prescription's"
            )
        if not dispensed_value or any(issued_value[s] != dispensed_value[s] for s in dispensed_value):
            return another
    if dispensed.get("identifier") is not None and dispensed.get("identifier") != issued.get("identifier"):
        return "dispense names the medication by an identifier the prescription does not carry"
    if "displays" not in issued:
        return None
    if not set(dispensed.get("versions") or ()) <= set(issued.get("versions") or ()):
        return "dispense carries a coding version the prescription does not state"
    if not _words(dispensed) <= _words(issued):
        return (
            "dispense names the medication in words the prescription does not use (its text and coding "
            "displays must be the prescription's, in normal form)"
        )
    extra_details = {
        k: v for k, v in (dispensed.get("details") or {}).items() if (issued.get("details") or {}).get(k) != v
    }
    if extra_details:
        key = sorted(extra_details)[0]
        return f"dispense's contained Medication states a {key} the prescription does not state so"
    return None


def _words(ids: Mapping[str, Any]) -> set[str]:
    """The text and coding displays, in normal form."""
    values = [ids.get("text"), *(ids.get("displays") or [])]
    return {w for v in values if (w := normal_text(v)) is not None}
