"""What a dispense says beside the medication that the record must not contradict: the patient's
identifier and display (keyed digests, compared with the prescription's) and who received the drug, the
performing organisation and the place (held to the signer and its name in OrgRegistry by the workflow), a
contained Medication's batch expiry, and the statements FHIR R4 makes only of a dispense not done or
substituted (``statusReason``, ``substitution``) or in days only (``daysSupply``)."""

from __future__ import annotations

import re
from typing import Any

from adapters._common import canonical_json, name_fault, pseudonym
from adapters.abc import AdaptContext
from adapters.rx.errors import FhirInvalid, RxBatchExpired, RxDispenseMismatch, RxUnitInvalid
from adapters.rx.fhir import get as _get
from adapters.rx.fhir import references, when
from adapters.rx.trace_codes import unit_key
from provenance.timestamps import TimeSpan


def person_details(ref: Any, ctx: AdaptContext) -> dict[str, str]:
    """Keyed digests of what a reference to the patient says beside it (``identifier``, ``display``), under
    the same labels wherever it stands (``subject``, a ``receiver``), so that they compare."""
    out = {}
    for key in ("identifier", "display"):
        value = _get(ref, key)
        if value is not None:
            keyed = pseudonym(ctx, f"patient-{key}", canonical_json({key: value}).decode())
            if keyed is not None:
                out[key] = keyed
    return out


def subject_details(obj: dict[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    """Keyed digests of what the subject says beside its reference (``identifier``, ``display``): a dispense
    may repeat the prescription's, never name another person (facts are kept in clear: digests only)."""
    out = person_details(obj.get("subject"), ctx)
    return {"patient_details_hmac": out} if out else {}


def receivers(obj: dict[str, Any], ctx: AdaptContext) -> list[tuple[str, dict[str, str]]]:
    """Each ``receiver`` (R4: Patient or Practitioner, who picked the drug up) with the keyed digests of its
    identifier and display, to compare with the prescription's patient. A receiver is the patient: the
    subject's own reference; anyone else (a Practitioner, another patient, a display or identifier alone) is
    a name the gateway cannot hold to the prescription, ``RX_DISPENSE_MISMATCH`` naming it."""
    subject = _get(obj, "subject", "reference")
    out = []
    for i, ref in enumerate(obj.get("receiver") or []):
        field = f"receiver.{i}"
        if _get(ref, "reference") != subject:
            raise RxDispenseMismatch(
                "a receiver is the prescription's patient, by the subject's reference",
                details={"field": f"{field}.reference"},
            )
        out.append((field, person_details(ref, ctx)))
    return out


# The forms a performer's actor may take: a practitioner of the pharmacy, or the pharmacy itself, both as
# relative references. Any other form (an absolute URL, a search, a urn, a contained resource, a
# PractitionerRole, no reference) could name an organisation the workflow cannot hold to the signer. The
# same holds of the place: a relative Location reference, the pharmacy's own.
_PRACTITIONER = re.compile(r"Practitioner/[A-Za-z0-9\-.]{1,64}")
_ORGANIZATION = re.compile(r"Organization/([A-Za-z0-9\-.]{1,64})")
_LOCATION = re.compile(r"Location/[A-Za-z0-9\-.]{1,64}")


def performers(obj: dict[str, Any]) -> dict[str, Any]:
    """The organisations a dispense's performers name: ``<id>`` for ``Organization/<id>``, and for an actor
    in any form but that and ``Practitioner/<id>`` its reference marked ``?`` (never an organisation's id),
    so the workflow, which holds them to the signing pharmacy, refuses it."""
    orgs = set()
    for p in obj.get("performer") or []:
        ref = _get(p, "actor", "reference")
        if isinstance(ref, str) and _PRACTITIONER.fullmatch(ref):
            continue
        named = _ORGANIZATION.fullmatch(ref) if isinstance(ref, str) else None
        orgs.add(named.group(1) if named else f"?{ref if isinstance(ref, str) else ''}")
    return {"performer_orgs": sorted(orgs)} if orgs else {}


def shown(obj: dict[str, Any]) -> dict[str, Any]:
    """What a dispense displays of who and where, for the workflow to hold to OrgRegistry (the adapter's
    ``detail``: never stored). ``org_displays``: the pharmacy's name as displayed (an organisation
    performer's ``display``, the location's), by field; ``practitioners``: each ``Practitioner/<id>``
    performer's id and display, by field (an id that is a registered organisation's, in any case or
    punctuation, is held to its entry); ``places``: the location's and destination's ids (never another
    organisation's); ``org_authors``: a note's ``Organization/<id>`` author (the signer's); ``manufacturers``:
    a contained Medication's manufacturer, id and display (no organisation of the network).
    An actor or the location with an ``identifier`` is refused here: it may name another organisation than
    its reference; so is a location in any form but a relative ``Location/<id>`` (contained, absolute, a
    search: those may name another organisation's place)."""
    displays, people, places = {}, {}, {}
    for i, p in enumerate(obj.get("performer") or []):
        ref, display = _get(p, "actor", "reference"), _get(p, "actor", "display")
        _plain(display, f"performer.{i}.actor.display")
        named = isinstance(ref, str) and (_PRACTITIONER.fullmatch(ref) or _ORGANIZATION.fullmatch(ref))
        if named and "identifier" in p["actor"]:  # an identifier alone: another form, refused as one
            raise RxDispenseMismatch(
                "a performer is named by its reference alone: an identifier beside it may name another "
                "organisation",
                details={"field": f"performer.{i}.actor.identifier"},
            )
        if isinstance(ref, str) and _PRACTITIONER.fullmatch(ref):
            people[f"performer.{i}.actor"] = [ref.partition("/")[2], display]
        elif isinstance(display, str):
            displays[f"performer.{i}.actor.display"] = display
    for field in ("location", "destination"):  # where it is dispensed, and where it is sent
        if (place := obj.get(field)) is None:
            continue
        ref = _get(place, "reference")
        if not (isinstance(ref, str) and _LOCATION.fullmatch(ref)) or "identifier" in place:
            raise RxDispenseMismatch(
                f"a dispense's {field} is the pharmacy's own place, a relative Location/<id> reference "
                "(displayed, if at all, as the pharmacy's registered name); no identifier, contained, "
                "absolute or search reference: those may name another organisation's place",
                details={"field": field},
            )
        places[f"{field}.reference"] = ref.partition("/")[2]
        _plain(display := _get(place, "display"), f"{field}.display")
        if isinstance(display, str):
            displays[f"{field}.display"] = display
    authors = _authors(obj, people, displays)
    makers = {}
    for i, res in enumerate(obj.get("contained") or []):
        if _get(res, "resourceType") != "Medication" or (maker := res.get("manufacturer")) is None:
            continue
        field, ref = f"contained.{i}.manufacturer", _get(maker, "reference")
        named = _ORGANIZATION.fullmatch(ref) if isinstance(ref, str) else None
        if (ref is not None and named is None) or not isinstance(maker, dict) or "identifier" in maker:
            raise RxDispenseMismatch(
                "a manufacturer is named by a relative Organization/<id> reference or a display alone",
                details={"field": field},
            )
        _plain(display := maker.get("display"), f"{field}.display")
        makers[field] = [named.group(1) if named else None, display]
    held = {"org_authors": authors, "manufacturers": makers}  # only when a dispense names them
    return {
        "org_displays": displays,
        "practitioners": people,
        "places": places,
        **{key: value for key, value in held.items() if value},
    }


# A note's author: a relative reference to who may write one (R4 Annotation.author[x]).
_AUTHOR = re.compile(r"(Practitioner|Organization|Patient|RelatedPerson)/([A-Za-z0-9\-.]{1,64})")


def bound_performers(obj: dict[str, Any]) -> None:
    """At most MAX_PERFORMERS performers, each display at most MAX_DISPLAY characters: checked before
    anything else reads them (``adapters.rx.mentions`` bounds every other text; :func:`shown` the rest of
    :func:`_plain`)."""
    if not isinstance(performers := obj.get("performer"), list):
        return
    if len(performers) > MAX_PERFORMERS:
        raise RxDispenseMismatch(
            f"a dispense names at most {MAX_PERFORMERS} performers", details={"field": "performer"}
        )
    for i, p in enumerate(performers):
        if isinstance(display := _get(p, "actor", "display"), str) and len(display) > MAX_DISPLAY:
            _plain(display, f"performer.{i}.actor.display")  # refuses it, as shown would


def _authors(obj: dict[str, Any], people: dict[str, Any], displays: dict[str, str]) -> dict[str, str]:
    """A note's ``authorReference`` is held as a performer is: a ``Practitioner/<id>`` joins ``people``, an
    ``Organization/<id>``'s display joins ``displays`` and its id is returned by field (the workflow holds it
    to the signer); any other form, or an identifier beside it, is refused: it may name another
    organisation."""
    out = {}
    for i, note in enumerate(obj.get("note") or []):
        if (author := _get(note, "authorReference")) is None:
            continue
        field, ref, display = f"note.{i}.authorReference", _get(author, "reference"), _get(author, "display")
        named = _AUTHOR.fullmatch(ref) if isinstance(ref, str) else None
        if named is None or "identifier" in author:
            raise RxDispenseMismatch(
                "a note's author is named by a relative reference alone (Practitioner, Organization, "
                "Patient, RelatedPerson): another form may name another organisation",
                details={"field": field},
            )
        _plain(display, f"{field}.display")
        if named.group(1) == "Practitioner":
            people[field] = [named.group(2), display]
        elif named.group(1) == "Organization":
            out[field] = named.group(2)
            if isinstance(display, str):
                displays[f"{field}.display"] = display
    return out


# Bounds on what the name rules read (docs/formats.md): a display is a name, a dispense a few hands.
MAX_DISPLAY = 200
MAX_PERFORMERS = 10


def _plain(display: Any, field: str) -> None:
    """A display the rules compare with OrgRegistry's names is at most MAX_DISPLAY characters of Han, ASCII
    letters and digits, spaces and a name's punctuation alone (``adapters._common.name_fault``): an
    invisible or look-alike character inside another organisation's name (解<U+3164>放碑大药房, рharmacy-1)
    would show the name while comparing as another text."""
    if isinstance(display, str) and len(display) > MAX_DISPLAY:
        raise RxDispenseMismatch(
            f"a display is a name of at most {MAX_DISPLAY} characters", details={"field": field}
        )
    fault = name_fault(display) if isinstance(display, str) else None
    if fault is not None:
        raise RxDispenseMismatch(
            f"a display names by Han, ASCII letters and digits, spaces and a name's punctuation ({fault} is "
            "none)",
            details={"field": field, "character": fault},
        )


# R4 Reference.type: the type of the target, a StructureDefinition's URL, relative to this base when a
# resource type of FHIR's own ("Patient").
_TYPE_BASE = "http://hl7.org/fhir/StructureDefinition/"
_RELATIVE = re.compile(r"([A-Z][A-Za-z]{1,63})/[^/]+")


def _references(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """The references the dispense rules read, by field: the subject, each receiver, each performer's actor,
    the location, the prescription, the medication by reference."""
    out: list[tuple[str, Any]] = [("subject", obj.get("subject")), ("location", obj.get("location"))]
    out += [("medicationReference", obj.get("medicationReference"))]
    out += [
        (f"authorizingPrescription.{i}", r) for i, r in enumerate(obj.get("authorizingPrescription") or [])
    ]
    out += [(f"receiver.{i}", r) for i, r in enumerate(obj.get("receiver") or [])]
    out += [(f"performer.{i}.actor", _get(p, "actor")) for i, p in enumerate(obj.get("performer") or [])]
    out += [("destination", obj.get("destination"))]
    out += [
        (f"note.{i}.authorReference", _get(n, "authorReference")) for i, n in enumerate(obj.get("note") or [])
    ]
    return [(field, ref) for field, ref in out if isinstance(ref, dict)]


def check_reference_types(obj: dict[str, Any]) -> None:
    """Every reference's ``type``, when present, is the type its relative reference names (R4 Reference:
    "the type ... SHALL match" the reference's): a receiver ``Patient/…`` typed Practitioner, a prescription
    ``MedicationRequest/…`` typed Patient say two things of one thing. ``RX_DISPENSE_MISMATCH`` naming the
    ``type``."""
    for field, ref in references(obj):
        if "type" not in ref:
            continue
        target = ref.get("reference")
        named = _RELATIVE.fullmatch(target) if isinstance(target, str) else None
        if named is None or ref["type"] not in (named.group(1), _TYPE_BASE + named.group(1)):
            raise RxDispenseMismatch(
                "a reference's type is the resource type its relative reference names",
                details={"field": f"{field}.type"},
            )


# The R4 performer functions (medicationdispense-performer-function): what each performer did, coded.
_FUNCTION = "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function"
_FUNCTIONS = {
    "dataenterer": "Data Enterer",
    "packager": "Packager",
    "checker": "Checker",
    "finalchecker": "Final Checker",
}


def _qualifiable(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """The elements the dispense rules read, by field (beside :func:`_references`): what an extension on
    them would qualify without the gateway reading it."""
    sub = obj.get("substitution")
    out: list[tuple[str, Any]] = [("daysSupply", obj.get("daysSupply")), ("quantity", obj.get("quantity"))]
    out += [("substitution", sub), *_concept("substitution.type", _get(sub, "type"))]
    out += _concept("medicationCodeableConcept", obj.get("medicationCodeableConcept"))
    for i, res in enumerate(obj.get("contained") or []):
        if _get(res, "resourceType") == "Medication":
            # The resource's own extensions are the HIS's, as the dispense's are (a batch note): kept.
            out += [
                *_concept(f"contained.{i}.code", res.get("code")),
                (f"contained.{i}.batch", res.get("batch")),
                (f"contained.{i}.manufacturer", res.get("manufacturer")),
            ]
    for i, p in enumerate(obj.get("performer") or []):
        out += [(f"performer.{i}", p), *_concept(f"performer.{i}.function", _get(p, "function"))]
    return [(field, e) for field, e in [*out, *_references(obj)] if isinstance(e, dict)]


def _concept(field: str, concept: Any) -> list[tuple[str, Any]]:
    """A CodeableConcept and each of its codings, by field."""
    codings = _get(concept, "coding") if isinstance(concept, dict) else None
    return [(field, concept)] + [(f"{field}.coding.{j}", c) for j, c in enumerate(codings or [])]


def check_unqualified(obj: dict[str, Any]) -> None:
    """The elements the dispense rules read carry no extension (``extension``, a primitive's ``_x``
    companion; a ``modifierExtension`` is refused anywhere), nor do a completed dispense's ``status`` and
    dates: a data-absent-reason on ``status``, a translation of a display, a note on daysSupply's value
    would qualify what the gateway holds to the record without its reading it. A performer's ``function``
    is coded, in R4's performer-function codes, without text. ``RX_DISPENSE_MISMATCH`` naming the element."""
    for top in ("_id", "_status", "_whenHandedOver", "_whenPrepared"):
        if top in obj:
            raise RxDispenseMismatch(
                f"{top[1:]} carries no extension: the gateway reads the value alone", details={"field": top}
            )
    for i, res in enumerate(obj.get("contained") or []):
        # A contained Medication's status and id are read (an absent status is active; #id is the
        # reference): a ``_status`` data-absent-reason would qualify what the gateway reads as active.
        key = (
            next((k for k in res if k.startswith("_")), None)
            if _get(res, "resourceType") == "Medication"
            else None
        )
        if key is not None:
            raise RxDispenseMismatch(
                f"a contained Medication's {key[1:]} carries no extension: the gateway reads the value alone",
                details={"field": f"contained.{i}.{key}"},
            )
    for field, element in _qualifiable(obj):
        key = next((k for k in element if k.startswith("_") or k == "extension"), None)
        if key is None and "id" in element:
            key = "id"
        if key is not None:
            raise RxDispenseMismatch(
                f"{field} carries no extension or element id ({key}): the gateway reads the element alone",
                details={"field": f"{field}.{key}"},
            )
        if field.endswith(".function") and (
            "text" in element
            or not all(
                _get(c, "system") == _FUNCTION
                and _get(c, "code") in _FUNCTIONS
                and _get(c, "display") in (None, _FUNCTIONS.get(str(_get(c, "code"))))
                for c in element.get("coding") or [None]
            )
        ):
            raise RxDispenseMismatch(
                f"a performer's function is one of {sorted(_FUNCTIONS)} ({_FUNCTION}), displayed as R4 does "
                "or not at all, without text",
                details={"field": field},
            )


# R4 v3-substanceAdminSubstitution: N, "none" (no substitution occurred). Nothing else is said of a dispense
# that was not substituted: a type, a reason or a responsible party would state a substitution.
_SUBSTITUTION = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
_UNSUBSTITUTED = frozenset({"wasSubstituted", "type"})  # an element id: refused by check_unqualified


def check_statements(obj: dict[str, Any]) -> None:
    """What R4 states only of another dispense than a completed one of the prescribed drug: a
    ``statusReason[x]`` is why a dispense was not performed; ``substitution`` beside ``wasSubstituted``
    false is at most the type N ("none"). ``RX_DISPENSE_MISMATCH`` naming the element."""
    for i, res in enumerate(obj.get("contained") or []):
        if _get(res, "resourceType") == "Medication" and res.get("status", "active") != "active":
            # entered-in-error, inactive: the dispense's own record of the drug withdraws it
            raise RxDispenseMismatch(
                "a dispensed contained Medication is active (or states no status)",
                details={"field": f"contained.{i}.status"},
            )
    for key in ("statusReasonCodeableConcept", "statusReasonReference"):
        if key in obj:
            raise RxDispenseMismatch(
                "statusReason says why a dispense was not performed: a completed dispense has none",
                details={"field": key},
            )
    sub = obj.get("substitution")
    if not isinstance(sub, dict):
        return
    if sub.get("wasSubstituted") is True:
        # The chain records the prescribed drug as dispensed: a substitution would be another drug.
        raise RxDispenseMismatch(
            "a substituted dispense is not recorded: the prescription is dispensed as written",
            details={"field": "substitution"},
        )
    extra = sorted(set(sub) - _UNSUBSTITUTED)
    if extra:
        raise RxDispenseMismatch(
            f"substitution.{extra[0]} states a substitution, and none was made (wasSubstituted false)",
            details={"field": f"substitution.{extra[0]}"},
        )
    kind = sub.get("type")
    codings = _get(kind, "coding") or []
    none = bool(codings) and all(
        _get(c, "system") == _SUBSTITUTION
        and _get(c, "code") == "N"
        and unit_key(str(_get(c, "display") or "none")) == "none"
        for c in codings
    )
    if kind is not None and (not none or "text" in kind):
        raise RxDispenseMismatch(
            "a dispense not substituted has at most the substitution type N (none) of "
            f"{_SUBSTITUTION}, without other codes or text",
            details={"field": "substitution.type"},
        )


_UCUM = "http://unitsofmeasure.org"
_DAYS = frozenset({"d", "day", "days", "天", "日"})


def check_days_unit(obj: dict[str, Any]) -> None:
    """``daysSupply`` (its value checked as any quantity's) is in days: the UCUM code ``d`` when coded (a
    code needs its system, qty-3), a unit text of days (d, day, days, 天, 日): a unit is required."""
    days = obj.get("daysSupply")
    if not isinstance(days, dict):
        return
    code, system, unit = days.get("code"), days.get("system"), days.get("unit")
    if code is not None and system is None:
        raise FhirInvalid(
            "a quantity's code needs its system (qty-3)", details={"field": "daysSupply.system"}
        )
    if code is not None and (system != _UCUM or code != "d"):
        raise RxUnitInvalid(
            f"daysSupply is in days: the UCUM code d ({_UCUM})", details={"field": "daysSupply.code"}
        )
    if (unit is None and code is None) or (unit is not None and unit_key(str(unit)) not in _DAYS):
        raise RxUnitInvalid(
            "daysSupply is in days: a unit of d, day, days, 天 or 日", details={"field": "daysSupply.unit"}
        )


def check_batch(obj: dict[str, Any], handed_over: TimeSpan, ctx: AdaptContext) -> None:
    """A contained Medication's ``batch.expirationDate`` is not before the hand-over, nor before the day
    the gateway records it (as a box's (17)): an expired batch is not dispensed."""
    for i, res in enumerate(obj.get("contained") or []):
        value = _get(res, "batch", "expirationDate")
        if not isinstance(res, dict) or res.get("resourceType") != "Medication" or value is None:
            continue
        field = f"contained.{i}.batch.expirationDate"
        expires = when(res, "batch", "expirationDate", zone=ctx.time_zone)
        late = max(handed_over.start, ctx.now or handed_over.start)
        if expires.end <= late:
            raise RxBatchExpired(
                f"the batch expired ({value}) before it was handed over or recorded",
                details={"field": field},
            )
