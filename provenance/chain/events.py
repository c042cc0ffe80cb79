"""The auditors' reads of the chain: anchored checkpoints of ``ProvenanceLog``, the workflow events of the
domain contracts, and ``OrgRegistry``'s account bindings (checked by :mod:`provenance.audit`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from provenance.chain.contracts import at, org_id_text
from provenance.domains import EventSpec, workflow_events
from provenance.errors import FormatError, LedgerError


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
# Which events, of which contracts, for which record kind: each domain declares its own
# (:class:`provenance.domains.EventSpec`); the audit reads the installed domains' declarations.


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
    kind: str  # the record kind this event must be backed by
    subject_id: bytes | None = None  # on-chain id of the subject (rxId, datasetId), None when there is none
    scope_digest: str | None = None  # ConsentGranted only

    @property
    def name(self) -> str:
        return f"{self.contract}.{self.event}"


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


MAX_LOG_ANSWERS = 1024  # eth_getLogs answers an event's logs may take: 64 GiB of logs at 64 MiB each


def all_logs(event: Any) -> list[Any]:
    """Every log of ``event`` (a contract's ``events.Name``) from genesis to the head, oldest first: one
    ``eth_getLogs`` over the whole chain, its range split in halves while an answer is larger than a
    node's answer may be (a long-lived network's events do not fit one), in at most ``MAX_LOG_ANSWERS``
    answers (a node answering every span too large made it ask block by block: the seventh attack). A log
    outside the span asked for is the node's error, not a log."""
    from provenance.client.transport import AnswerTooLarge

    head = int(event.w3.eth.block_number)
    found: list[Any] = []
    spans, asked = [(0, head)], 0
    while spans:
        lo, hi = spans.pop()
        asked += 1
        if asked > MAX_LOG_ANSWERS:
            raise LedgerError(
                f"the node's {event.event_name} logs of blocks 0 to {head} fit no {MAX_LOG_ANSWERS} answers"
            )
        try:
            logs = event.get_logs(from_block=lo, to_block=hi)
        except AnswerTooLarge:
            if lo == hi:
                raise
            mid = (lo + hi) // 2
            spans += [(mid + 1, hi), (lo, mid)]  # the older half next
            continue
        if any(not lo <= int(lg["blockNumber"]) <= hi for lg in logs):
            raise LedgerError(f"the node answered {event.event_name} logs of blocks {lo} to {hi} with others")
        found += logs
    return found


def read_workflow_events(
    w3: Web3, addresses: Mapping[str, str], specs: Iterable[EventSpec] | None = None
) -> list[WorkflowEvent]:
    """Every workflow event ``specs`` name (default: the installed domains'), of the contracts in
    ``addresses`` (name → address), oldest first."""
    specs = list(workflow_events().values() if specs is None else specs)
    contracts = {s.contract: at(w3, s.contract, addresses[s.contract]) for s in specs}
    wanted = {(s.contract, s.event) for s in specs} | {
        (s.contract, s.subject_via[0]) for s in specs if s.subject_via is not None
    }
    logs = {key: all_logs(contracts[key[0]].events[key[1]]) for key in sorted(wanted)}
    senders: dict[str, str] = {}

    def sender(tx_hash: str) -> str:
        if tx_hash not in senders:
            senders[tx_hash] = w3.eth.get_transaction(tx_hash)["from"]  # type: ignore[arg-type]
        return senders[tx_hash]

    events = []
    for spec in specs:
        via: dict[bytes, bytes] = {}
        if spec.subject is not None and spec.subject_via is not None:
            # The subject id is in another event (a consent names its request; the request, its dataset).
            event, value = spec.subject_via
            via = {
                bytes(lg["args"][spec.subject]): bytes(lg["args"][value])
                for lg in logs[(spec.contract, event)]
            }
        for lg in logs[(spec.contract, spec.event)]:
            args = lg["args"]
            tx_hash = lg["transactionHash"].to_0x_hex()
            subject = None
            if spec.subject is not None:
                subject = (
                    via.get(bytes(args[spec.subject])) if spec.subject_via else bytes(args[spec.subject])
                )
            events.append(
                WorkflowEvent(
                    contract=spec.contract,
                    event=spec.event,
                    block_number=int(lg["blockNumber"]),
                    log_index=int(lg["logIndex"]),
                    tx_hash=tx_hash,
                    digest=_hex(args[spec.digest]),
                    org=org_id_text(bytes(args[spec.org])),
                    sender=Web3.to_checksum_address(args[spec.account] if spec.account else sender(tx_hash)),
                    kind=spec.kind,
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
        for lg in all_logs(reg.events[name])
    ]
    return sorted(changes, key=lambda c: (c.block_number, c.log_index))


def audited_contracts() -> tuple[str, ...]:
    """The domain contracts whose events the workflow audit reads (the installed domains')."""
    return tuple(dict.fromkeys(s.contract for s in workflow_events().values()))


def workflow_registry(w3: Web3, addresses: Mapping[str, str]) -> str:
    """The OrgRegistry the domain contracts consult (their ``registry()``), checked against ``addresses``."""
    named = addresses.get("OrgRegistry")
    consulted = {
        name: Web3.to_checksum_address(at(w3, name, addresses[name]).functions.registry().call())
        for name in audited_contracts()
    }
    found = set(consulted.values()) | ({Web3.to_checksum_address(named)} if named else set())
    if len(found) != 1:
        raise FormatError(
            "the contracts do not share one OrgRegistry: "
            + ", ".join(f"{n} consults {a}" for n, a in consulted.items())
            + (f"; the manifest names {named}" if named else ""),
        )
    return found.pop()
