"""Auditors' whole-chain checks: every anchored checkpoint extends the previous one (``audit log``), and
every workflow event of the domain contracts is backed by a signed record that says the same (``audit
workflow``). The chain reads are :mod:`provenance.chain.events`; the command is ``provenance.cli.audit``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from web3 import Web3

from provenance.chain.anchor import ChainAnchorChecker
from provenance.chain.contracts import chain_key
from provenance.chain.events import (
    AccountChange,
    AnchoredCheckpoint,
    WorkflowEvent,
    audited_contracts,
    read_account_changes,
    read_workflow_events,
    workflow_registry,
)
from provenance.chain.registry import read_trust
from provenance.client import NOT_YET_LOGGED, Api, Client, GatewayError
from provenance.client.transport import AnswerOutOfBounds
from provenance.errors import ConsistencyInvalid, FormatError, NotFound, ProvenanceError
from provenance.log.bundle import EvidenceBundle
from provenance.log.merkle import verify_consistency
from provenance.manifest import Manifest
from provenance.records import Envelope
from provenance.verification.batch import check_bundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier


@dataclass(frozen=True, slots=True)
class LinkResult:
    """The check between two consecutive anchors: ``ok`` or a reason (fork, gap, unavailable proof)."""

    first: AnchoredCheckpoint
    second: AnchoredCheckpoint
    ok: bool
    reason: str = ""


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
            except AnswerOutOfBounds:
                raise  # the gateway's answers, not this link: every next proof would cost the bound again
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


def workflow_contracts(manifest: Manifest) -> dict[str, str]:
    """The addresses of the contracts the workflow audit reads, by name, from a network manifest."""
    missing = [n for n in audited_contracts() if not isinstance(manifest.contracts.get(n), str)]
    if missing:
        names = ", ".join(missing)
        raise FormatError(f"manifest {manifest.path} names no {names}", details={"missing": missing})
    return {str(k): str(v) for k, v in manifest.contracts.items()}


@dataclass(frozen=True, slots=True)
class WorkflowAudit:
    """What ``audit workflow`` checks: the events, the account bindings, and the verifier of the records."""

    events: list[WorkflowEvent]
    accounts: list[AccountChange]
    verifier: Verifier
    keys: str  # where the verifier's keys come from: "trust file" or "OrgRegistry"

    def run(self, fetch: BundleSource, *, progress: Callable[[], None] | None = None) -> list[EventResult]:
        """Check every event against the record its digest names (``fetch``: its bundle document)."""
        return check_events(self.events, fetch, self.verifier, self.accounts, progress=progress)


def prepare_workflow_audit(
    w3: Web3, contracts: Mapping[str, str], client: Client, *, trust: TrustStore | None = None
) -> WorkflowAudit:
    """Read the events and account bindings from the chain and build the verifier the audit checks with.

    Without ``trust``, keys as ``orgs export`` reads them from the chain, not as the audited gateway says.
    """
    registry = workflow_registry(w3, contracts)
    events = read_workflow_events(w3, contracts)
    accounts = read_account_changes(w3, registry)
    store = (
        trust
        if trust is not None
        else read_trust(
            w3,
            registry,
            provenance_log=contracts["ProvenanceLog"],
            note_for=lambda size: Api.note(client.checkpoint(size)),
        )
    )
    checker = ChainAnchorChecker(
        w3,
        contract=contracts["ProvenanceLog"],
        chain_id=store.chain_id,
        proofs=client,
        seal_keys=store.seal_keys,
        give_up_after_bound=True,  # an audit checks every event's anchor: one bound, not one per event
    )
    verifier = Verifier(trust=store, anchor_checker=checker, require_anchor=False)
    return WorkflowAudit(events, accounts, verifier, "trust file" if trust else "OrgRegistry")
