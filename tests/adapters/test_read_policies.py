"""The domains' read policies (who reads which record) and the access-code digest an rx.issue carries.

The gateway applies these policies to every read; tests/security/test_read_matrix.py walks every role ×
every endpoint on a real gateway. Here: the declarations themselves, and the relations a gateway cannot
show with the demo organisations (two data users of one dataset).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from adapters import ADAPTERS, Access, Grant, adapt, read_policies, read_policy
from adapters.errors import PayloadInvalid
from provenance.access_code import FHIR_EXTENSION_URL, AccessCode
from provenance.chain.contracts import Role
from tests.kit.adapter_samples import ASSETS

ISSUE: dict[str, Any] = json.loads((ASSETS / "fhir" / "rx-issue-amoxicillin.json").read_text("utf-8"))
RX_ID = ISSUE["identifier"][0]["value"]


def test_every_kind_has_its_domains_policy_naming_real_roles() -> None:
    roles = {r.name.lower() for r in Role}
    for kind, adapter in ADAPTERS.items():
        assert read_policy(kind) is adapter.read_policy and kind in adapter.read_policy.kinds
    for policy in read_policies():
        named = set(policy.roles) | set(policy.parties)
        assert named <= roles, named - roles  # a typo would silently grant nothing
        assert {"auditor", "regulator"} <= set(policy.roles)
        for kind in policy.kinds:  # oversight reads everything, payloads included
            assert (
                policy.access(kind, signer=False, role="auditor", party=False, holder=False) is Access.PAYLOAD
            )
        # Nobody else reads anything by default; the signer always reads its own.
        for kind in policy.kinds:
            assert policy.access(kind, signer=True, role=None, party=False, holder=False) is Access.PAYLOAD
            assert (
                policy.access(kind, signer=False, role="log_operator", party=True, holder=False)
                is Access.NONE
            )


def test_a_grant_reads_no_payload_whose_envelope_it_does_not_read() -> None:
    with pytest.raises(ValueError, match="payload"):
        Grant(frozenset({"rx.issue"}), frozenset({"rx.dispense"}))


def test_a_requester_reads_other_requesters_records_only_as_envelopes() -> None:
    """Two data users of one dataset are parties of its subject: each reads the other's request and access
    only as envelopes, the consents in full; the owner, once a party, reads everything; before, requests."""
    p = read_policy("share.request")
    for kind, user_sees in (
        ("share.request", Access.ENVELOPE),
        ("share.access", Access.ENVELOPE),
        ("share.consent", Access.PAYLOAD),
        ("share.revoke_consent", Access.PAYLOAD),
    ):
        assert p.access(kind, signer=False, role="data_user", party=True, holder=False) is user_sees
        assert p.access(kind, signer=False, role="data_owner", party=True, holder=False) is Access.PAYLOAD
        assert p.access(kind, signer=False, role="data_user", party=False, holder=False) is Access.NONE
    assert (
        p.access("share.request", signer=False, role="data_owner", party=False, holder=False)
        is Access.PAYLOAD
    )
    assert p.access("share.access", signer=False, role="data_owner", party=False, holder=False) is Access.NONE


def test_prescription_parties_and_code_holders() -> None:
    p = read_policy("rx.issue")
    for role in ("hospital", "pharmacy"):
        for kind in ("rx.issue", "rx.dispense", "rx.revoke"):
            assert p.access(kind, signer=False, role=role, party=True, holder=False) is Access.PAYLOAD
            assert p.access(kind, signer=False, role=role, party=False, holder=False) is Access.NONE
    assert p.access("rx.issue", signer=False, role="pharmacy", party=False, holder=True) is Access.PAYLOAD
    assert p.access("rx.dispense", signer=False, role="pharmacy", party=False, holder=True) is Access.ENVELOPE
    # A code in the hands of an unregistered or suspended organisation opens nothing.
    assert p.access("rx.issue", signer=False, role=None, party=False, holder=True) is Access.NONE
    assert (
        read_policy("env.reading").access(
            "env.reading", signer=False, role="monitoring_station", party=True, holder=False
        )
        is Access.NONE
    )


def _with_extensions(*extensions: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(ISSUE)
    doc["extension"] = list(extensions)
    return doc


def test_the_issue_carries_the_codes_digest_and_the_policy_checks_codes_against_it() -> None:
    code = AccessCode.new()
    facts = adapt("rx.issue", code.attach(ISSUE, RX_ID)).facts
    assert facts["access_code_digest"] == code.digest(RX_ID)
    p = read_policy("rx.issue")
    assert p.code_kind == "rx.issue" and p.code_matches is not None
    assert p.code_matches(facts, str(code).lower().replace("-", " "))  # as typed from the slip
    assert not p.code_matches(facts, AccessCode.new().value)
    assert not p.code_matches({**facts, "rx_id": "RX-OTHER"}, code.value)  # bound to its prescription
    assert not p.code_matches({k: v for k, v in facts.items() if k != "access_code_digest"}, code.value)
    # Every issue carries one (#23 finding 1): without it no pharmacy could read or dispense it.
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.issue", _with_extensions())
    assert e.value.code == "ACCESS_CODE_DIGEST_MISSING" and e.value.details["field"] == "extension"
    # Only the kinds whose submitter must hold the code: a dispense and its review (审方), never the issue,
    # the revoke or the settlement.
    assert p.code_writes == frozenset({"rx.dispense", "rx.review"})
    assert all(not read_policy(k).code_writes for k in ("share.request", "env.reading", "party.record"))


@pytest.mark.parametrize(
    ("extensions", "field"),
    [
        ([{"url": FHIR_EXTENSION_URL, "valueString": "ab" * 32}] * 2, "extension"),
        ([{"url": FHIR_EXTENSION_URL, "valueString": "AB" * 32}], "extension.0.valueString"),
        ([{"url": FHIR_EXTENSION_URL, "valueString": "ab" * 32 + "\n"}], "extension.0.valueString"),
        ([{"url": FHIR_EXTENSION_URL, "valueInteger": 7}], "extension.0.valueString"),
    ],
)
def test_a_malformed_or_repeated_access_code_digest_is_refused(
    extensions: list[dict[str, Any]], field: str
) -> None:
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.issue", _with_extensions(*extensions))
    assert e.value.code == "FHIR_INVALID" and e.value.details["field"] == field, e.value.to_dict()
