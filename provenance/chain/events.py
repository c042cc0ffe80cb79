"""The auditors' reads of the chain: anchored checkpoints of ``ProvenanceLog``, the workflow events of the
domain contracts, and ``OrgRegistry``'s account bindings (checked by :mod:`provenance.audit`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from provenance.chain.contracts import at, org_id_text
from provenance.errors import FormatError


@dataclass(frozen=True, slots=True)
class AnchoredCheckpoint:
    index: int
    tree_size: int
    root: bytes
    block_number: int
    timestamp: int


def read_anchors(w3: Web3, log_contract: str) -> list[AnchoredCheckpoint]:
    """Every (size, root) anchored in ``ProvenanceLog``, oldest first."""
    log = at(w3, "ProvenanceLog", log_contract)
    count = log.functions.anchorCount().call()
    out = []
    for i in range(count):
        a = log.functions.anchorAt(i).call()
        out.append(AnchoredCheckpoint(i, int(a[0]), bytes(a[1]), int(a[4]), int(a[3])))
    return out


# --- workflow events: every state change on chain is backed by a signed record -------------------------


@dataclass(frozen=True, slots=True)
class _EventSpec:
    kind: str  # the record kind whose contract call emits this event
    org: str  # event fields, by name
    digest: str
    subject: str | None = None  # the indexed id the record's subject hashes to ("requestId": via Requested)
    account: str | None = None  # msg.sender, when the event carries it (else the transaction's from)
    scope: str | None = None  # ConsentGranted's scopeDigest: the consent record's payload digest


# (contract, event) → how to read it. Every workflow call of gateway/services/ledger.py emits one of these.
WORKFLOW_EVENTS: dict[tuple[str, str], _EventSpec] = {
    ("Prescriptions", "Issued"): _EventSpec("rx.issue", "issuerOrg", "recordDigest", "rxId", "account"),
    ("Prescriptions", "Dispensed"): _EventSpec(
        "rx.dispense", "dispenserOrg", "recordDigest", "rxId", "account"
    ),
    ("Prescriptions", "Revoked"): _EventSpec("rx.revoke", "issuerOrg", "recordDigest", "rxId", "account"),
    ("DataSharing", "Requested"): _EventSpec("share.request", "requesterOrg", "digest", "datasetId"),
    ("DataSharing", "ConsentGranted"): _EventSpec(
        "share.consent", "ownerOrg", "digest", "requestId", scope="scopeDigest"
    ),
    ("DataSharing", "ConsentWithdrawn"): _EventSpec(
        "share.revoke_consent", "ownerOrg", "digest", "requestId"
    ),
    ("DataSharing", "AccessRecorded"): _EventSpec(
        "share.access", "requesterOrg", "accessDigest", "datasetId", "account"
    ),
    # PartyRecords names no subject on chain: the branch is the sending organisation (the org check).
    ("PartyRecords", "RecordAdded"): _EventSpec("party.record", "branchOrg", "digest", account="account"),
}
WORKFLOW_CONTRACTS = ("Prescriptions", "DataSharing", "PartyRecords")


@dataclass(frozen=True, slots=True)
class WorkflowEvent:
    """One workflow event of a domain contract, as the audit needs it."""

    contract: str
    event: str
    block_number: int
    log_index: int
    tx_hash: str
    digest: str  # the record id the event carries (hex, no 0x)
    org: str  # the event's organisation
    sender: str  # the account that made the call (checksum address)
    subject_id: bytes | None = None  # on-chain id of the subject (rxId, datasetId), None when there is none
    scope_digest: str | None = None  # ConsentGranted only

    @property
    def name(self) -> str:
        return f"{self.contract}.{self.event}"

    @property
    def kind(self) -> str:
        """The record kind this event must be backed by."""
        return WORKFLOW_EVENTS[(self.contract, self.event)].kind


@dataclass(frozen=True, slots=True)
class AccountChange:
    """An ``AccountAdded`` / ``AccountRemoved`` event of OrgRegistry."""

    block_number: int
    log_index: int
    org: str
    account: str
    added: bool


def _hex(value: Any) -> str:
    return bytes(value).hex()


def read_workflow_events(w3: Web3, addresses: Mapping[str, str]) -> list[WorkflowEvent]:
    """Every workflow event of the domain contracts in ``addresses`` (name → address), oldest first."""
    contracts = {name: at(w3, name, addresses[name]) for name in WORKFLOW_CONTRACTS}
    logs = {key: list(contracts[key[0]].events[key[1]].get_logs(from_block=0)) for key in WORKFLOW_EVENTS}
    # ConsentGranted / ConsentWithdrawn name the request only: its dataset is in the Requested event.
    dataset_of = {
        bytes(lg["args"]["requestId"]): bytes(lg["args"]["datasetId"])
        for lg in logs[("DataSharing", "Requested")]
    }
    senders: dict[str, str] = {}

    def sender(tx_hash: str) -> str:
        if tx_hash not in senders:
            senders[tx_hash] = w3.eth.get_transaction(tx_hash)["from"]  # type: ignore[arg-type]
        return senders[tx_hash]

    events = []
    for (contract, name), spec in WORKFLOW_EVENTS.items():
        for lg in logs[(contract, name)]:
            args = lg["args"]
            tx_hash = lg["transactionHash"].to_0x_hex()
            subject = None
            if spec.subject == "requestId":
                subject = dataset_of.get(bytes(args["requestId"]))
            elif spec.subject is not None:
                subject = bytes(args[spec.subject])
            events.append(
                WorkflowEvent(
                    contract=contract,
                    event=name,
                    block_number=int(lg["blockNumber"]),
                    log_index=int(lg["logIndex"]),
                    tx_hash=tx_hash,
                    digest=_hex(args[spec.digest]),
                    org=org_id_text(bytes(args[spec.org])),
                    sender=Web3.to_checksum_address(args[spec.account] if spec.account else sender(tx_hash)),
                    subject_id=subject,
                    scope_digest=_hex(args[spec.scope]) if spec.scope else None,
                )
            )
    return sorted(events, key=lambda e: (e.block_number, e.log_index))


def read_account_changes(w3: Web3, registry: str) -> list[AccountChange]:
    """Every transaction account OrgRegistry bound to an organisation or unbound, oldest first."""
    reg = at(w3, "OrgRegistry", registry)
    changes = [
        AccountChange(
            block_number=int(lg["blockNumber"]),
            log_index=int(lg["logIndex"]),
            org=org_id_text(bytes(lg["args"]["orgId"])),
            account=Web3.to_checksum_address(lg["args"]["account"]),
            added=added,
        )
        for name, added in (("AccountAdded", True), ("AccountRemoved", False))
        for lg in reg.events[name].get_logs(from_block=0)
    ]
    return sorted(changes, key=lambda c: (c.block_number, c.log_index))


def workflow_registry(w3: Web3, addresses: Mapping[str, str]) -> str:
    """The OrgRegistry the domain contracts consult (their ``registry()``), checked against ``addresses``."""
    named = addresses.get("OrgRegistry")
    consulted = {
        name: Web3.to_checksum_address(at(w3, name, addresses[name]).functions.registry().call())
        for name in WORKFLOW_CONTRACTS
    }
    found = set(consulted.values()) | ({Web3.to_checksum_address(named)} if named else set())
    if len(found) != 1:
        raise FormatError(
            "the contracts do not share one OrgRegistry: "
            + ", ".join(f"{n} consults {a}" for n, a in consulted.items())
            + (f"; the manifest names {named}" if named else ""),
        )
    return found.pop()
