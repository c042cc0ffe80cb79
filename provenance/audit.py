"""Auditors' whole-chain checks: every anchored checkpoint extends the previous one (``audit log``), and
every workflow event of the domain contracts is backed by a signed record that says the same (``audit
workflow``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from web3 import Web3

from provenance.batch import check_bundle
from provenance.bundle import EvidenceBundle
from provenance.client import NOT_YET_LOGGED, GatewayError
from provenance.contracts import at, chain_key, org_id_text
from provenance.errors import ConsistencyInvalid, FormatError, NotFound, ProvenanceError
from provenance.merkle import verify_consistency
from provenance.records import Envelope
from provenance.verify import Verifier


@dataclass(frozen=True, slots=True)
class AnchoredCheckpoint:
    index: int
    tree_size: int
    root: bytes
    block_number: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class LinkResult:
    """The check between two consecutive anchors: ``ok`` or a reason (fork, gap, unavailable proof)."""

    first: AnchoredCheckpoint
    second: AnchoredCheckpoint
    ok: bool
    reason: str = ""


def read_anchors(w3: Web3, log_contract: str) -> list[AnchoredCheckpoint]:
    """Every (size, root) anchored in ``ProvenanceLog``, oldest first."""
    log = at(w3, "ProvenanceLog", log_contract)
    count = log.functions.anchorCount().call()
    out = []
    for i in range(count):
        a = log.functions.anchorAt(i).call()
        out.append(AnchoredCheckpoint(i, int(a[0]), bytes(a[1]), int(a[4]), int(a[3])))
    return out


ProofSource = Callable[[int, int], Sequence[bytes]]


def check_links(
    anchors: Sequence[AnchoredCheckpoint],
    proof_for: ProofSource,
    *,
    progress: Callable[[], None] | None = None,
) -> list[LinkResult]:
    """Verify a consistency proof between each pair of consecutive anchors."""
    results = []
    for first, second in pairwise(anchors):
        if second.tree_size <= first.tree_size:
            results.append(LinkResult(first, second, False, "anchored size did not grow"))
        else:
            try:
                proof = proof_for(first.tree_size, second.tree_size)
                verify_consistency(first.tree_size, second.tree_size, first.root, second.root, list(proof))
                results.append(LinkResult(first, second, True))
            except ConsistencyInvalid as exc:
                results.append(LinkResult(first, second, False, f"fork: {exc.message}"))
            except ProvenanceError as exc:
                results.append(LinkResult(first, second, False, f"no proof: {exc.message}"))
        if progress:
            progress()
    return results


# --- workflow events: every state change on chain is backed by a signed record -------------------------
#
# The gateway holds the organisations' transaction keys, so a contract call proves nothing about who meant
# it. Each workflow event carries the record id (digest) it was made for: the audit fetches that record's
# evidence bundle, verifies it, and checks that the record says what the event did, by whom.


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


def bound_org(
    changes: Sequence[AccountChange], account: str, block_number: int, log_index: int
) -> str | None:
    """The organisation ``account`` was a transaction account of at that point of the chain, if any."""
    org = None
    for c in sorted(changes, key=lambda c: (c.block_number, c.log_index)):
        if (c.block_number, c.log_index) >= (block_number, log_index):
            break
        if c.account == account:
            org = c.org if c.added else None
    return org


def subject_id(subject: str) -> bytes:
    """The on-chain id of a record subject: ``rx:RX1`` → ``chain_key("rx", "RX1")``, ``dataset:…`` alike."""
    namespace, _, value = subject.partition(":")
    return chain_key(namespace, value)


@dataclass(frozen=True, slots=True)
class EventResult:
    """The audit of one event: ``ok``, or the failed ``check`` with a plain ``reason``.

    ``check`` is one of ``record`` (no signed record behind the digest), ``bundle`` (its evidence does not
    verify; ``step`` names the step), ``kind``, ``subject``, ``scope``, ``org``, ``sender``, ``reused``.
    """

    event: WorkflowEvent
    ok: bool
    check: str = ""
    reason: str = ""
    step: str = ""
    record: Envelope | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``provenance audit workflow --json``)."""
        ev, env = self.event, self.record
        doc: dict[str, Any] = {
            "contract": ev.contract,
            "event": ev.event,
            "block_number": ev.block_number,
            "log_index": ev.log_index,
            "tx_hash": ev.tx_hash,
            "digest": ev.digest,
            "org": ev.org,
            "sender": ev.sender,
            "expected_kind": ev.kind,
            "record": {"kind": env.kind, "subject": env.subject, "org": env.org} if env else None,
            "ok": self.ok,
        }
        if not self.ok:
            doc |= {"check": self.check, "reason": self.reason} | ({"step": self.step} if self.step else {})
        return doc


# The bundle document (JSON) of a record id. Raises NotFound (or a GatewayError with status 404) when the
# gateway has no such record, GatewayError NOT_YET_LOGGED while no checkpoint covers it; any other error
# ends the audit.
BundleSource = Callable[[str], Any]


def check_events(
    events: Sequence[WorkflowEvent],
    fetch: BundleSource,
    verifier: Verifier,
    accounts: Sequence[AccountChange],
    *,
    progress: Callable[[], None] | None = None,
) -> list[EventResult]:
    """Check that each event is backed by a verified signed record of its kind, subject and organisation."""
    results = []
    backed: dict[str, WorkflowEvent] = {}  # record id → the (first) event it backs
    records: dict[str, Envelope | EventResult] = {}  # one fetch and one verification per record id
    for ev in sorted(events, key=lambda e: (e.block_number, e.log_index)):
        found = records.get(ev.digest)
        if found is None:
            found = records[ev.digest] = _record_of(ev, fetch, verifier)
        if isinstance(found, EventResult):
            results.append(replace(found, event=ev))
        else:
            results.append(result := _match(ev, found, accounts, backed.get(ev.digest)))
            if result.ok:
                backed[ev.digest] = ev
        if progress:
            progress()
    return results


def _record_of(ev: WorkflowEvent, fetch: BundleSource, verifier: Verifier) -> Envelope | EventResult:
    """The verified envelope behind the event's digest, or the failed result."""
    try:
        doc = fetch(ev.digest)
    except (NotFound, GatewayError) as exc:
        if isinstance(exc, NotFound) or exc.status == 404:  # the gateway's RECORD_NOT_FOUND
            return EventResult(
                ev, False, "record", f"no signed record: the gateway has no record {ev.digest}"
            )
        if exc.code != NOT_YET_LOGGED:
            raise  # the audit cannot go on (token refused, gateway failing): not a finding about this event
        reason = f"no evidence yet: record {ev.digest} is not under a signed checkpoint yet; re-run shortly"
        return EventResult(ev, False, "record", reason)
    failure = check_bundle(verifier, doc, consistent_ok=False)
    if failure is not None:
        reason = f"bundle fails at step {failure.step}: [{failure.code}] {failure.message}"
        return EventResult(ev, False, "bundle", reason, step=failure.step)
    bundle = EvidenceBundle.from_dict(doc)
    if bundle.digest != ev.digest:
        reason = f"bundle fails at step digest: the gateway served record {bundle.digest} for {ev.digest}"
        return EventResult(ev, False, "bundle", reason, step="digest")
    return bundle.signed.envelope


def _match(
    ev: WorkflowEvent, env: Envelope, accounts: Sequence[AccountChange], first: WorkflowEvent | None
) -> EventResult:
    def fail(check: str, reason: str) -> EventResult:
        return EventResult(ev, False, check, reason, record=env)

    if env.kind != ev.kind:
        return fail("kind", f"kind mismatch: {ev.name} needs a {ev.kind} record, {ev.digest} is {env.kind}")
    if ev.subject_id is not None and subject_id(env.subject) != ev.subject_id:
        return fail(
            "subject",
            f"subject mismatch: the record is about {env.subject} (on-chain id "
            f"{subject_id(env.subject).hex()}), the event names {ev.subject_id.hex()}",
        )
    if ev.scope_digest is not None and ev.scope_digest != env.payload_digest:
        return fail(
            "scope",
            f"scope mismatch: the event's scope digest {ev.scope_digest} is not the consent's payload "
            f"digest {env.payload_digest}",
        )
    if env.org != ev.org:
        return fail("org", f"org mismatch: the record is signed by {env.org}, the event's org is {ev.org}")
    bound = bound_org(accounts, ev.sender, ev.block_number, ev.log_index)
    if bound != ev.org:
        holder = f"an account of {bound}" if bound else "no organisation's account"
        return fail(
            "sender",
            f"sender not the org's account: {ev.sender} was {holder} at block {ev.block_number}, "
            f"not one of {ev.org}",
        )
    if first is not None:
        return fail(
            "reused",
            f"record reused: {ev.digest} already backs {first.name} in block {first.block_number} "
            f"(tx {first.tx_hash}); a record makes one contract call",
        )
    return EventResult(ev, True, record=env)


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
