"""Data-sharing audit adapter: schema, consent ⊆ request, access ⊆ consent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters import AdaptContext, adapt
from adapters.errors import PayloadInvalid
from tests.kit.adapter_samples import ASSETS

SHARING = ASSETS / "sharing"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SHARING / name).read_text(encoding="utf-8"))
    return data


REQUEST, CONSENT, ACCESS = load("request.json"), load("consent.json"), load("access.json")


def expect(kind: str, payload: dict[str, Any], code: str, field: str, **ctx: Any) -> None:
    with pytest.raises(PayloadInvalid) as e:
        adapt(kind, payload, AdaptContext(**ctx) if ctx else None)
    assert (e.value.code, e.value.details["field"]) == (code, field), e.value.to_dict()


@pytest.mark.parametrize(
    ("kind", "base", "change", "field"),
    [
        ("share.request", REQUEST, {"fields": []}, "fields"),
        ("share.request", REQUEST, {"fields": ["a", "a"]}, "fields"),
        ("share.request", REQUEST, {"fields": ["bad field"]}, "fields.0"),
        ("share.request", REQUEST, {"purpose": ""}, "purpose"),
        ("share.request", REQUEST, {"requested_at": "yesterday"}, "requested_at"),
        ("share.request", REQUEST, {"dataset": "a/b"}, "dataset"),
        ("share.request", REQUEST, {"note": "x"}, "note"),
        ("share.consent", CONSENT, {"fields": "person_id_hash"}, "fields"),
        ("share.access", ACCESS, {"consent_digest": "AB" * 32}, "consent_digest"),
        ("share.access", ACCESS, {"accessor": None}, "accessor"),
    ],
)
def test_schema_rejections(kind: str, base: dict[str, Any], change: dict[str, Any], field: str) -> None:
    expect(kind, {**base, **change}, "PAYLOAD_INVALID", field)


def test_missing_field_named() -> None:
    expect(
        "share.consent",
        {k: v for k, v in CONSENT.items() if k != "expires_at"},
        "PAYLOAD_INVALID",
        "expires_at",
    )


def test_consent_rules() -> None:
    request = dict(adapt("share.request", REQUEST).facts)
    assert adapt("share.consent", CONSENT, AdaptContext(prior=request)).subject == "dataset:hz-rkk-hjxx-2026"
    expect(
        "share.consent",
        {**CONSENT, "expires_at": CONSENT["granted_at"]},
        "SHARE_RULE_VIOLATION",
        "expires_at",
    )
    expect(
        "share.consent", CONSENT, "EXPIRY_NOT_IN_FUTURE", "expires_at", now=datetime(2027, 3, 1, tzinfo=UTC)
    )
    wider = {**CONSENT, "fields": [*CONSENT["fields"], "phone"]}
    expect("share.consent", wider, "SHARE_RULE_VIOLATION", "fields", prior=request)
    expect("share.consent", {**CONSENT, "purpose": "其他"}, "SHARE_RULE_VIOLATION", "purpose", prior=request)
    early = {**CONSENT, "granted_at": "2026-11-25T08:00:00+08:00"}
    expect("share.consent", early, "SHARE_RULE_VIOLATION", "granted_at", prior=request)


def test_access_rules() -> None:
    consent = adapt("share.consent", CONSENT)
    prior = {**consent.facts, "digest": consent.digest}
    assert adapt("share.access", ACCESS, AdaptContext(prior=prior)).facts["consent_digest"] == consent.digest
    code = "CONSENT_SCOPE_EXCEEDED"
    expect("share.access", {**ACCESS, "fields": ["birth_year"]}, code, "fields", prior=prior)
    expect("share.access", {**ACCESS, "dataset": "other"}, code, "dataset", prior=prior)
    expect("share.access", {**ACCESS, "purpose": "营销"}, code, "purpose", prior=prior)
    expect("share.access", {**ACCESS, "consent_digest": "0" * 64}, code, "consent_digest", prior=prior)
    late = {**ACCESS, "accessed_at": "2027-02-25T00:00:00+08:00"}
    expect("share.access", late, code, "accessed_at", prior=prior)
    before = {**ACCESS, "accessed_at": "2026-11-25T11:29:59+08:00"}
    expect("share.access", before, code, "accessed_at", prior=prior)


def test_access_dated_in_the_future() -> None:
    at = datetime.fromisoformat(ACCESS["accessed_at"])
    expect("share.access", ACCESS, "ACCESS_IN_FUTURE", "accessed_at", now=at - timedelta(minutes=6))
    assert adapt("share.access", ACCESS, AdaptContext(now=at - timedelta(minutes=4))).kind == "share.access"
    wide = AdaptContext(now=at - timedelta(minutes=6), max_clock_skew=timedelta(minutes=10))
    assert adapt("share.access", ACCESS, wide).kind == "share.access"
