"""Data-sharing audit (政务数据共享): request → consent → access events, and consent revocation.

All four are strict JSON documents; the subject is ``dataset:<dataset>``. A consent may narrow a request
(fewer fields) but never widen it; an access must stay inside its consent (dataset, purpose, fields,
time window). Checks that need the earlier record run when ``AdaptContext.prior`` carries its facts.

Reads (``READ_POLICY``): the dataset's owner, once it has answered a request for it, reads everything about
the dataset; a requester reads the envelopes of the dataset's records and the consents and withdrawals
(the terms it may read under), not other requesters' requests and accesses. Data owners read every request
(a request is addressed to the dataset's owner, who has signed nothing about it yet).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field

from adapters._common import (
    STRICT,
    Id,
    Instant,
    adapted,
    check_not_future,
    domain_policy,
    everything,
    load_json_object,
    parse_instant,
    pseudonym,
    rfc3339_utc,
    unique_items,
    validate_model,
)
from adapters.abc import AdaptContext, AdaptedPayload, Grant, Payload
from adapters.errors import DateInFuture, ExpiryNotInFuture, PayloadInvalid
from adapters.sharing import lifecycle
from adapters.sharing.consent import outside_validity
from adapters.sharing.domain import DOMAIN
from adapters.sharing.errors import AccessInFuture, ConsentScopeExceeded, ShareRuleViolation

FieldName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")]
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


Fields = Annotated[list[FieldName], Field(min_length=1, max_length=256), unique_items("field names")]


class ShareRequest(BaseModel):
    """Payload of ``share.request``: an organisation asks to read some fields of a dataset for a purpose."""

    model_config = STRICT

    request_id: Id
    dataset: Id
    requester: Id  # the requesting organisation's id
    fields: Fields
    purpose: Text
    requested_at: Instant


class ShareConsent(BaseModel):
    """Payload of ``share.consent``: the data owner grants (part of) a request until ``expires_at``."""

    model_config = STRICT

    request_id: Id
    dataset: Id
    fields: Fields
    purpose: Text
    granted_at: Instant
    expires_at: Instant


class ShareAccess(BaseModel):
    """Payload of ``share.access``: one read of a dataset under a consent."""

    model_config = STRICT

    request_id: Id
    consent_digest: Digest  # payload digest of the share.consent this access relies on
    dataset: Id
    fields: Fields
    purpose: Text
    accessor: Id  # the submitting organisation, or "<org>:<system account>" of it (the gateway checks)
    accessed_at: Instant


class ShareRevoke(BaseModel):
    """Payload of ``share.revoke_consent``: the data owner withdraws a consent."""

    model_config = STRICT

    request_id: Id
    dataset: Id
    reason: Text
    revoked_at: Instant


_MODELS: dict[str, type[BaseModel]] = {
    "share.request": ShareRequest,
    "share.consent": ShareConsent,
    "share.access": ShareAccess,
    "share.revoke_consent": ShareRevoke,
    **lifecycle.MODELS,
}
_INSTANTS = ("requested_at", "granted_at", "expires_at", "accessed_at", "revoked_at", *lifecycle.INSTANTS)
# Dates a record declares as past: bounded by the gateway's clock (an access has its own code).
_PAST: dict[str, type[DateInFuture] | None] = {
    "requested_at": None,
    "granted_at": None,
    "revoked_at": None,
    "accessed_at": AccessInFuture,
    **dict.fromkeys(lifecycle.PAST),
}
# DataSharing.MAX_CONSENT: the contract refuses a consent expiring further from its clock (ExpiryTooFar);
# the gateway checks the same bound against the chain's clock before it accepts a consent.
MAX_CONSENT = timedelta(days=5 * 365)


def _same(
    facts: Mapping[str, Any], prior: Mapping[str, Any], keys: tuple[str, ...], error: type[PayloadInvalid]
) -> None:
    for key in keys:
        if key in prior and prior[key] != facts[key]:
            raise error(f"{key} differs from the record it builds on", details={"field": key})


def _time(facts: Mapping[str, Any], key: str) -> datetime:
    return parse_instant(facts[key], key)


def _check_consent(facts: dict[str, Any], ctx: AdaptContext) -> None:
    if _time(facts, "expires_at") <= _time(facts, "granted_at"):
        raise ShareRuleViolation("consent must expire after it is granted", details={"field": "expires_at"})
    if ctx.now is not None and _time(facts, "expires_at") <= ctx.now:
        raise ExpiryNotInFuture("consent already expired", details={"field": "expires_at"})
    request = ctx.prior
    if request is None:
        return
    _same(facts, request, ("request_id", "dataset", "purpose"), ShareRuleViolation)
    extra = sorted(set(facts["fields"]) - set(request.get("fields", facts["fields"])))
    if extra:
        raise ShareRuleViolation(
            "consent grants fields never requested", details={"field": "fields", "extra": extra}
        )
    requested_at = request.get("requested_at")
    if isinstance(requested_at, str) and _time(facts, "granted_at") < parse_instant(
        requested_at, "requested_at"
    ):
        raise ShareRuleViolation("consent granted before it was requested", details={"field": "granted_at"})


def _check_access(facts: dict[str, Any], ctx: AdaptContext) -> None:
    consent = ctx.prior
    if consent is None:
        return
    _same(facts, consent, ("request_id", "dataset", "purpose"), ConsentScopeExceeded)
    digest = consent.get("digest")
    if digest is not None and digest != facts["consent_digest"]:
        raise ConsentScopeExceeded("access names another consent", details={"field": "consent_digest"})
    extra = sorted(set(facts["fields"]) - set(consent.get("fields", facts["fields"])))
    if extra:
        raise ConsentScopeExceeded(
            "access reads fields outside its consent", details={"field": "fields", "extra": extra}
        )
    if outside_validity(consent, _time(facts, "accessed_at")) is not None:
        raise ConsentScopeExceeded("access outside the consent's validity", details={"field": "accessed_at"})


_KINDS = tuple(_MODELS)
_REQUESTS = frozenset({"share.request"})
# A data user party to a dataset reads the terms it may read under and the dataset's life, not other
# users' requests, accesses or settlements (prices); each side reads the settlement records it signed.
_TERMS = frozenset(
    {"share.consent", "share.revoke_consent", "data.collected", "data.stored", "data.opened", "data.derived"}
)

READ_POLICY = domain_policy(
    _KINDS,
    roles={"data_owner": Grant(_REQUESTS, _REQUESTS)},
    parties={"data_owner": everything(_KINDS), "data_user": Grant(frozenset(_KINDS), _TERMS)},
)


class SharingAdapter:
    """``share.request``, ``share.consent``, ``share.access``, ``share.revoke_consent`` and a dataset's life
    (``data.*``, :mod:`adapters.sharing.lifecycle`); ``dataset:<id>``."""

    domain = DOMAIN
    kinds: tuple[str, ...] = _KINDS
    read_policy = READ_POLICY

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        """Validate one data-sharing record's payload."""
        ctx = context or AdaptContext()
        model = _MODELS.get(kind)
        if model is None:
            raise PayloadInvalid(f"not a sharing kind: {kind}", details={"field": "kind"})
        obj = load_json_object(payload)
        facts = validate_model(model, obj).model_dump()
        for key in _INSTANTS:
            if key in facts:
                when = parse_instant(facts[key], key)
                if key in _PAST:
                    check_not_future(when, key, ctx, _PAST[key] or DateInFuture)
                facts[key] = rfc3339_utc(when)
        if kind == "share.consent":
            _check_consent(facts, ctx)
        elif kind == "share.access":
            _check_access(facts, ctx)
        else:
            lifecycle.check(kind, facts)
        if kind != "share.access":
            return adapted(kind, f"dataset:{facts['dataset']}", obj, facts)
        # "<org>:<account>" may name a person (an operator's login): the facts keep its keyed digest, the
        # rules check it against the submitter from the adapter's detail (never stored).
        accessor = facts.pop("accessor")
        keyed = pseudonym(ctx, "accessor", accessor)
        facts |= {} if keyed is None else {"accessor_ref_hmac": keyed}
        done = adapted(kind, f"dataset:{facts['dataset']}", obj, facts)
        return dataclasses.replace(done, detail={"accessor": accessor})
