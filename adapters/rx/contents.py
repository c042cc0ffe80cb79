"""What a dispense says beside the medication that the record must not contradict: the patient's
identifier and display (keyed digests, compared with the prescription's), the performing organisation (held
to the signer by the workflow), and a contained Medication's batch expiry."""

from __future__ import annotations

import re
from typing import Any

from adapters._common import canonical_json, pseudonym
from adapters.abc import AdaptContext
from adapters.rx.errors import RxBatchExpired
from adapters.rx.fhir import get as _get
from adapters.rx.fhir import when
from provenance.timestamps import TimeSpan


def subject_details(obj: dict[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    """Keyed digests of what the subject says beside its reference (``identifier``, ``display``): a dispense
    may repeat the prescription's, never name another person (facts are kept in clear: digests only)."""
    out = {}
    for key in ("identifier", "display"):
        value = _get(obj, "subject", key)
        if value is not None:
            keyed = pseudonym(ctx, f"patient-{key}", canonical_json({key: value}).decode())
            if keyed is not None:
                out[key] = keyed
    return {"patient_details_hmac": out} if out else {}


# The forms a performer's actor may take: a practitioner of the pharmacy, or the pharmacy itself, both as
# relative references. Any other form (an absolute URL, a search, a urn, a contained resource, a
# PractitionerRole, no reference) could name an organisation the workflow cannot hold to the signer.
_PRACTITIONER = re.compile(r"Practitioner/[A-Za-z0-9\-.]{1,64}")
_ORGANIZATION = re.compile(r"Organization/([A-Za-z0-9\-.]{1,64})")


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
