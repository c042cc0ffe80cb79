"""``provenance audit batches``: every batch root a domain contract anchored (``EnvMonitoring.BatchAnchored``)
is the root of a logged batch record, verified, of the same subject, saying the same (period, count).

Batch anchors carry no record id: the audit indexes the verified batch records the gateway exports (their
payload, the batch head, names the root) by (subject id, root) and looks each event up there. Logged batches
that no event anchors are reported too (anchoring pending, or refused on chain), not counted as failures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from provenance.audit import subject_id
from provenance.chain.contracts import at
from provenance.chain.events import all_logs
from provenance.domains import RootSpec, root_specs
from provenance.log.bundle import EvidenceBundle
from provenance.timestamps import parse_rfc3339
from provenance.verification.batch import check_bundle
from provenance.verification.verify import Verifier


@dataclass(frozen=True, slots=True)
class RootEvent:
    """One anchored root, as read from the chain."""

    spec: RootSpec
    block_number: int
    log_index: int
    tx_hash: str
    subject_id: bytes
    values: Mapping[str, Any]  # the spec's fields, as the event holds them

    @property
    def name(self) -> str:
        return f"{self.spec.contract}.{self.spec.event}"

    @property
    def root(self) -> str:
        return bytes(self.values[self.spec.root]).hex()


@dataclass(frozen=True, slots=True)
class RootResult:
    """One event's audit: ``ok`` (``record`` names the logged batch) or a ``reason``."""

    event: RootEvent
    ok: bool
    reason: str = ""
    record: str | None = None

    def to_dict(self) -> dict[str, Any]:
        ev = self.event
        doc: dict[str, Any] = {
            "event": ev.name,
            "block_number": ev.block_number,
            "tx_hash": ev.tx_hash,
            "subject_id": ev.subject_id.hex(),
            "root": ev.root,
            "ok": self.ok,
            "record": self.record,
        }
        return doc | ({"reason": self.reason} if not self.ok else {})


@dataclass(frozen=True, slots=True)
class RootAudit:
    results: list[RootResult]
    unanchored: list[str]  # logged batch records no event anchors
    bad_bundles: list[str]  # "<record>: <why>" for exported batch bundles that do not verify


def read_root_events(
    w3: Web3, addresses: Mapping[str, str], specs: Sequence[RootSpec] | None = None
) -> list[RootEvent]:
    """Every event ``specs`` name (default: the installed domains'), of the contracts in ``addresses``
    (name → address), oldest first."""
    events = []
    for spec in root_specs() if specs is None else specs:
        contract = at(w3, spec.contract, addresses[spec.contract])
        for lg in all_logs(contract.events[spec.event]):
            args = lg["args"]
            events.append(
                RootEvent(
                    spec=spec,
                    block_number=int(lg["blockNumber"]),
                    log_index=int(lg["logIndex"]),
                    tx_hash=lg["transactionHash"].to_0x_hex(),
                    subject_id=bytes(args[spec.subject]),
                    values={name: args[name] for name in spec.fields},
                )
            )
    return sorted(events, key=lambda e: (e.block_number, e.log_index))


def same_value(on_chain: Any, signed: Any) -> bool:
    if isinstance(on_chain, bytes | bytearray):
        return isinstance(signed, str) and bytes(on_chain).hex() == signed
    if isinstance(signed, str):
        try:
            return bool(int(parse_rfc3339(signed).timestamp()) == on_chain)
        except ValueError:
            return False
    return type(signed) is int and signed == on_chain


def check_roots(
    events: Sequence[RootEvent],
    bundles: Iterable[Any],
    verifier: Verifier,
    *,
    progress: Callable[[], None] | None = None,
) -> RootAudit:
    """Match each anchored root to a verified logged batch (``bundles``: the batch records' bundle
    documents, payloads included) of its subject that says the same."""
    kinds = {e.spec.kind: e.spec for e in events}
    logged: dict[tuple[str, bytes, str], tuple[str, Mapping[str, Any]]] = {}
    bad: list[str] = []
    for doc in bundles:
        failure = check_bundle(verifier, doc)
        if failure is not None:
            bad.append(f"{failure.record}: step {failure.step} [{failure.code}] {failure.message}")
            continue
        b = EvidenceBundle.from_dict(doc)
        env = b.signed.envelope
        spec = kinds.get(env.kind)
        if spec is None:
            continue
        if not b.has_payload or not isinstance(b.payload, dict):
            bad.append(f"{b.digest}: exported without its payload (the batch head); export with payloads")
            continue
        root = b.payload.get(spec.fields[spec.root])
        logged[(env.kind, subject_id(env.subject), str(root))] = (b.digest, b.payload)
    results = []
    matched: set[str] = set()
    for ev in events:
        found = logged.get((ev.spec.kind, ev.subject_id, ev.root))
        if found is None:
            reason = f"no logged {ev.spec.kind} of subject id {ev.subject_id.hex()} has root {ev.root}"
            results.append(RootResult(ev, False, reason))
        else:
            record, head = found
            differ = [
                f"{name} {ev.values[name]!r} on chain, {head.get(member)!r} signed"
                for name, member in ev.spec.fields.items()
                if not same_value(ev.values[name], head.get(member))
            ]
            if differ:
                results.append(
                    RootResult(ev, False, f"record {record} says otherwise: " + "; ".join(differ), record)
                )
            else:
                results.append(RootResult(ev, True, record=record))
                matched.add(record)
        if progress:
            progress()
    unanchored = sorted({rid for rid, _ in logged.values()} - matched)
    return RootAudit(results=results, unanchored=unanchored, bad_bundles=bad)
