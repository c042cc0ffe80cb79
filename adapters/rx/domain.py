"""The prescription domain as verifiers and auditors see it: who records which kind, which events its
contract (``Prescriptions``) emits for which kind."""

from __future__ import annotations

from provenance.domains import DomainSpec, EventSpec

ISSUE, DISPENSE, REVOKE = "rx.issue", "rx.dispense", "rx.revoke"
REVIEW, SETTLE = "rx.review", "rx.settle"
KINDS = (ISSUE, REVIEW, DISPENSE, REVOKE, SETTLE)
CONTRACT = "Prescriptions"

DOMAIN = DomainSpec(
    name="rx",
    roles={
        ISSUE: frozenset({"hospital"}),
        REVOKE: frozenset({"hospital"}),
        DISPENSE: frozenset({"pharmacy"}),
        REVIEW: frozenset({"pharmacist"}),
        SETTLE: frozenset({"insurer"}),
    },
    events=(
        EventSpec(CONTRACT, "Issued", ISSUE, "issuerOrg", "recordDigest", "rxId", "account"),
        EventSpec(CONTRACT, "Dispensed", DISPENSE, "dispenserOrg", "recordDigest", "rxId", "account"),
        EventSpec(CONTRACT, "Revoked", REVOKE, "issuerOrg", "recordDigest", "rxId", "account"),
        EventSpec(CONTRACT, "Reviewed", REVIEW, "reviewerOrg", "recordDigest", "rxId", "account"),
        EventSpec(CONTRACT, "Settled", SETTLE, "insurerOrg", "recordDigest", "rxId", "account"),
    ),
)


def state_key(rx_id: str) -> str:
    """The prescription's workflow state key."""
    return f"rx:{rx_id}"


def code_key(code_digest: str) -> str:
    """The state key of a box by its traceability code's SM3 digest: held once a dispense handed it over."""
    return f"code:{code_digest}"


def settlement_key(settlement_id: str) -> str:
    """The state key of a settlement id: each insurer's ids are its own, held per insurer under it. Case
    does not make another id (ybb9c… is YBB9C…): ids are ASCII (ID_PATTERN), upper-cased."""
    return f"settlement:{settlement_id.upper()}"
