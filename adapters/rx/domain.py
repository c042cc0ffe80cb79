"""The prescription domain as verifiers and auditors see it: who records which kind, which events its
contract (``Prescriptions``) emits for which kind."""

from __future__ import annotations

from provenance.domains import DomainSpec, EventSpec

ISSUE, DISPENSE, REVOKE = "rx.issue", "rx.dispense", "rx.revoke"
KINDS = (ISSUE, DISPENSE, REVOKE)
CONTRACT = "Prescriptions"

DOMAIN = DomainSpec(
    name="rx",
    roles={
        ISSUE: frozenset({"hospital"}),
        REVOKE: frozenset({"hospital"}),
        DISPENSE: frozenset({"pharmacy"}),
    },
    events=(
        EventSpec(CONTRACT, "Issued", ISSUE, "issuerOrg", "recordDigest", "rxId", "account"),
        EventSpec(CONTRACT, "Dispensed", DISPENSE, "dispenserOrg", "recordDigest", "rxId", "account"),
        EventSpec(CONTRACT, "Revoked", REVOKE, "issuerOrg", "recordDigest", "rxId", "account"),
    ),
)


def state_key(rx_id: str) -> str:
    """The prescription's workflow state key."""
    return f"rx:{rx_id}"
