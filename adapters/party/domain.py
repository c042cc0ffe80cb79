"""The party-building domain as verifiers and auditors see it: who records which kind, which event its
contract (``PartyRecords``) emits for it."""

from __future__ import annotations

from provenance.domains import DomainSpec, EventSpec

RECORD = "party.record"
KINDS = (RECORD,)
CONTRACT = "PartyRecords"

DOMAIN = DomainSpec(
    name="party",
    roles={RECORD: frozenset({"party_branch"})},
    # PartyRecords names no subject on chain: the branch is the sending organisation (the org check).
    events=(EventSpec(CONTRACT, "RecordAdded", RECORD, "branchOrg", "digest", account="account"),),
)
