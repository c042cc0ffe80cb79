"""FHIR R4 as hospital systems send it: the parts of the specification the prescription adapter reads itself.

``fhir.resources`` validates each resource's structure (R4B's MedicationRequest and MedicationDispense are
R4's). What it leaves to the reader is done here: ``dateTime`` and ``Period`` read as spans of time
(``provenance.timestamps.parse_fhir_datetime``: a date without a time is that calendar day in the
deployment's zone, and a period's end covers all of its last day), ``medication[x]`` resolved through a
local ``#id`` reference to a contained ``Medication``, and the DomainResource invariants on contained
resources (dom-2 to dom-5) that the library does not check. Nothing is rewritten: the resource is signed and
kept exactly as received, ``meta`` and every extension included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import tzinfo
from typing import Any

from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from adapters._common import validation_error
from adapters.rx import markdown, narrative
from adapters.rx.errors import FhirInvalid, RxRuleViolation
from provenance.timestamps import TimeSpan, parse_fhir_datetime

_CHOICES = ("medicationCodeableConcept", "medicationReference")
MAX_CONTAINED = 20


def get(obj: Any, *path: str | int) -> Any:
    """Walk plain JSON; ``None`` when any step is missing (the model has already checked the types)."""
    for step in path:
        if isinstance(step, int):
            obj = obj[step] if isinstance(obj, list) and len(obj) > step else None
        else:
            obj = obj.get(step) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def require(obj: dict[str, Any], *path: str | int) -> Any:
    """The value at ``path``, or FHIR_INVALID naming it when it is missing or empty."""
    value = get(obj, *path)
    if value is None or value == [] or value == "":
        field = ".".join(str(p) for p in path)
        raise FhirInvalid(f"{field} is required", details={"field": field})
    return value


def bound_contained(obj: dict[str, Any]) -> None:
    """At most MAX_CONTAINED contained resources: checked before the library (or anything) reads them,
    12,000 contained Medications took seconds of the gateway."""
    contained = obj.get("contained")
    if isinstance(contained, list) and len(contained) > MAX_CONTAINED:
        raise FhirInvalid(
            f"at most {MAX_CONTAINED} contained resources (a prescription names one medication)",
            details={"field": "contained"},
        )


def validate(model: type[MedicationRequest | MedicationDispense], obj: dict[str, Any]) -> None:
    """The resource is a valid FHIR ``model``, with one ``medication[x]`` and sound contained resources."""
    if obj.get("resourceType") != model.__name__:
        raise FhirInvalid(f"resourceType must be {model.__name__}", details={"field": "resourceType"})
    # First: the library reports a missing or doubled choice element without naming it.
    present = [name for name in _CHOICES if name in obj]
    if len(present) != 1:
        raise FhirInvalid(
            "exactly one of medicationCodeableConcept and medicationReference is required"
            + (f" (got {len(present)})" if present else ""),
            details={"field": "medication[x]"},
        )
    bound_contained(obj)
    try:
        model.model_validate(obj)
    except ValidationError as exc:
        raise validation_error(exc, FhirInvalid, model.__name__) from exc
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # fhir.resources raises assorted errors of its own from some validators: all mean "not valid FHIR".
        raise FhirInvalid(f"invalid {model.__name__}: {type(exc).__name__}", details={"field": "$"}) from exc
    medication(obj)  # first: a dangling #id also leaves its would-be target unreferenced (dom-3)
    _check_contained(obj)
    _check_modifiers(obj, "")
    narrative.check(obj)
    markdown.check(obj)


def when(obj: dict[str, Any], *path: str, zone: tzinfo) -> TimeSpan:
    """The required ``dateTime`` at ``path`` as the span it names (FHIR_INVALID naming the field)."""
    field = ".".join(path)
    value = require(obj, *path)
    try:
        return parse_fhir_datetime(value, zone)
    except ValueError as exc:
        raise FhirInvalid(
            f"{field} must be a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with Z "
            "or an offset, a date that exists",
            details={"field": field},
        ) from exc


def references(value: Any, field: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every R4 Reference anywhere in ``value`` (an object with a ``reference`` string: no other R4
    datatype has one), by its dotted field."""
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield field, value
        for key, item in value.items():
            if not (key == "reference" and isinstance(item, str)):
                yield from references(item, f"{field}.{key}".lstrip("."))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from references(item, f"{field}.{i}".lstrip("."))


def _references(value: Any) -> Iterator[str]:
    """Every ``Reference.reference`` string anywhere in ``value``."""
    return (ref["reference"] for _field, ref in references(value))


def _check_contained(obj: dict[str, Any]) -> None:
    """R4's invariants on contained resources, and ids that a ``#id`` reference resolves to one of."""
    contained = obj.get("contained") or []
    if not contained:
        return
    outside = set(_references({k: v for k, v in obj.items() if k != "contained"}))
    inside = [set(_references(res)) for res in contained]
    counts = Counter(ref for refs in inside for ref in refs)
    seen: set[Any] = set()
    for i, res in enumerate(contained):
        field = f"contained.{i}"
        rid = res.get("id")
        if isinstance(rid, str) and rid in seen:
            raise FhirInvalid(
                f"two contained resources have the id {rid!r}: a reference to #{rid} is ambiguous",
                details={"field": f"{field}.id"},
            )
        seen.add(rid)
        if "contained" in res:
            raise FhirInvalid("a contained resource contains no resources (dom-2)", details={"field": field})
        meta = res.get("meta") or {}
        if "versionId" in meta or "lastUpdated" in meta:
            raise FhirInvalid(
                "a contained resource has no meta.versionId or meta.lastUpdated (dom-4)",
                details={"field": f"{field}.meta"},
            )
        if "security" in meta:
            raise FhirInvalid(
                "a contained resource has no security labels (dom-5)", details={"field": f"{field}.meta"}
            )
        # dom-3: referred to from elsewhere in the resource (another contained resource counts), or itself
        # referring to its container ("#").
        local = f"#{rid}"
        elsewhere = local in outside or counts[local] > (local in inside[i])
        if not elsewhere and "#" not in inside[i]:
            raise FhirInvalid(
                f"contained resource {rid!r} is referred to from nowhere in the resource (dom-3)",
                details={"field": field},
            )


def _check_modifiers(value: Any, path: str) -> None:
    """No modifier the adapter does not understand: a ``modifierExtension`` (at any level) or
    ``implicitRules`` may change what the resource means (R4 extensibility.html#modifierExtension: a system
    that does not understand one refuses the data rather than read the resource without it)."""
    if isinstance(value, dict):
        for key, item in value.items():
            field = f"{path}.{key}" if path else key
            if key in ("modifierExtension", "implicitRules"):
                raise RxRuleViolation(
                    f"{key} is not understood here: the resource may mean something else than it reads",
                    details={"field": field},
                )
            _check_modifiers(item, field)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_modifiers(item, f"{path}.{i}")


def medication(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The medication as ``(CodeableConcept, reference)``: the resource's ``medicationCodeableConcept``, or
    the ``code`` of the contained ``Medication`` its ``medicationReference`` names by ``#id`` (then no
    reference: a local id means nothing outside its resource), or else a reference to a Medication held
    elsewhere (``Medication/123``) with no concept."""
    concept = obj.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept, None
    ref = get(obj, "medicationReference", "reference")
    if not isinstance(ref, str):
        raise FhirInvalid(
            "medicationReference.reference is required (a Medication by reference or a contained #id)",
            details={"field": "medicationReference.reference"},
        )
    if not ref.startswith("#"):
        return None, ref
    found = [
        (i, r)
        for i, r in enumerate(obj.get("contained") or [])
        if isinstance(r, dict) and r.get("id") == ref[1:]
    ]
    if not found:
        raise FhirInvalid(
            f"medicationReference {ref!r} names no contained resource",
            details={"field": "medicationReference.reference"},
        )
    if len(found) > 1:
        raise FhirInvalid(
            f"two contained resources have the id {ref[1:]!r}: the reference {ref!r} is ambiguous",
            details={"field": f"contained.{found[1][0]}.id"},
        )
    i, med = found[0]
    if med.get("resourceType") != "Medication":
        raise FhirInvalid(
            f"medicationReference {ref!r} names a contained {med.get('resourceType')}, not a Medication",
            details={"field": "medicationReference.reference"},
        )
    code = med.get("code")
    if not isinstance(code, dict) or not (code.get("coding") or code.get("text")):
        # Valid FHIR, but nothing to tell which drug it is nor to match a dispense with its prescription.
        raise RxRuleViolation(
            "the contained Medication must carry a code (codings or text)",
            details={"field": f"contained.{i}.code"},
        )
    return code, None
