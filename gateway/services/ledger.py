"""The gateway's view of the chain: web3.py contract objects built from the committed artifacts.

Reads (organisations, keys, prescription and sharing state) serve the write path's checks; writes (anchors,
workflow calls) are sent by the workers with the transaction account of the organisation concerned, so the
contracts' role gates see the real organisation. The manifest (``devnet/deploy.py`` writes it) names the
chain, the contracts and the accounts' key files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3Exception
from web3.providers.rpc.utils import ExceptionRetryConfiguration
from web3.types import RPCEndpoint

from provenance.chain.contracts import ContractReverted, Role, at, chain_key, decode_revert, org_id, transact
from provenance.chain.registry import registry_org
from provenance.errors import LedgerError, ProvenanceError
from provenance.manifest import Manifest
from provenance.orgs import OrgEntry
from provenance.timestamps import from_unix, to_unix

# The manifest's role names are the enum's, lower case.
ROLE_NAMES = {r: r.name.lower() for r in Role}


@dataclass(frozen=True, slots=True)
class ChainStation:
    """A monitoring point (MN) as EnvMonitoring holds it: the organisation that operates it."""

    mn: str
    operator: str
    active: bool


@dataclass(frozen=True, slots=True)
class AnchorState:
    """What ProvenanceLog holds now: the latest anchored (size, root), and the growth an anchor may add."""

    size: int
    root: bytes
    max_growth: int


@dataclass(frozen=True, slots=True)
class AnchorReceipt:
    tx_hash: str
    block_number: int
    block_hash: str


# What web3's HTTP provider raises when the node is down, slow or answers nonsense.
CHAIN_ERRORS: tuple[type[BaseException], ...] = (
    Web3Exception,
    requests.RequestException,
    OSError,
    TimeoutError,
    ValueError,
)


class Ledger:
    """Contract reads and transactions for the gateway (thread-safe per sending account)."""

    def __init__(self, *, manifest_path: Path, rpc_url: str | None = None) -> None:
        self.manifest_path = Path(manifest_path)
        try:
            self.manifest = Manifest.load(self.manifest_path)
        except ProvenanceError as exc:
            raise LedgerError(f"cannot read the network manifest {manifest_path}: {exc.message}") from exc
        self.rpc_url = rpc_url or self.manifest.rpc_url
        self.chain_id = self.manifest.chain_id
        self.w3 = Web3(
            Web3.HTTPProvider(
                self.rpc_url,
                request_kwargs={"timeout": 10},
                # web3's default retries only the builtin ConnectionError; a pooled keep-alive connection
                # that the node closed surfaces as requests' ConnectionError: retry reads on that too.
                exception_retry_configuration=ExceptionRetryConfiguration(
                    errors=(requests.ConnectionError, requests.Timeout, ConnectionError),
                    retries=3,
                    backoff_factor=0.05,
                ),
                # web3's validation asks eth_chainId before every call and transaction (5 of the 12 RPCs
                # of an anchor); a node's chain id never changes, so ask once.
                cache_allowed_requests=True,
                cacheable_requests={RPCEndpoint("eth_chainId")},
            )
        )
        names = self.manifest.contracts
        self.registry: Contract = at(self.w3, "OrgRegistry", names["OrgRegistry"])
        self.log: Contract = at(self.w3, "ProvenanceLog", names["ProvenanceLog"])
        self.prescriptions: Contract = at(self.w3, "Prescriptions", names["Prescriptions"])
        self.data_sharing: Contract = at(self.w3, "DataSharing", names["DataSharing"])
        self.party_records: Contract = at(self.w3, "PartyRecords", names["PartyRecords"])
        self.env_monitoring: Contract = at(self.w3, "EnvMonitoring", names["EnvMonitoring"])
        self._accounts: dict[str, LocalAccount] = {}
        self._send_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # --- manifest ------------------------------------------------------------------------------------

    def resolve(self, relative: str) -> Path:
        """A path named in the manifest, relative to the manifest's folder."""
        return self.manifest.resolve(relative)

    @property
    def log_info(self) -> Mapping[str, str]:
        return self.manifest.log

    def holds_account(self, org: str) -> bool:
        """Whether the gateway holds a transaction account for ``org`` (its manifest names one)."""
        return self.manifest.find(org) is not None

    def account(self, org: str) -> LocalAccount:
        """The transaction account the gateway holds for ``org`` (LedgerError if it holds none)."""
        with self._lock:
            acct = self._accounts.get(org)
            if acct is None:
                entry = self.manifest.find(org)
                if entry is None:
                    raise LedgerError(f"the gateway holds no transaction account for {org!r}")
                path = self.resolve(entry.account_key_file)
                try:
                    acct = Account.from_key(path.read_text("ascii").strip())
                except (OSError, ValueError) as exc:
                    # A configuration fault, told as such in the workers' log (not a traceback per retry).
                    raise LedgerError(f"cannot read the transaction key of {org!r} ({path}): {exc}") from exc
                self._accounts[org] = acct
                self._send_locks[org] = threading.Lock()
            return acct

    # --- reads ---------------------------------------------------------------------------------------

    def block_number(self) -> int:
        """Latest block number."""
        try:
            return int(self.w3.eth.block_number)
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc

    def org(self, org: str) -> OrgEntry | None:
        """The organisation as OrgRegistry holds it, or None if it is not registered."""
        try:
            oid = org_id(org)
        except ValueError:
            return None
        try:
            info = self.registry.functions.getOrg(oid).call()
        except ContractLogicError:
            return None
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        try:
            raw_keys = self.registry.functions.keysOf(oid).call()
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        return registry_org(org, info, raw_keys)

    def org_ids(self) -> list[str]:
        """Every registered organisation id."""
        try:
            ids = self.registry.functions.orgIds().call()
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        return [bytes(i).rstrip(b"\0").decode("utf-8", "replace") for i in ids]

    def next_block_time(self) -> int:
        """The earliest ``block.timestamp`` the next block can have: after the head's, not before now (the
        embedded node's and Besu's rule). Contracts compare their time fields with it; the chain's clock
        may run ahead of the gateway's (a block per transaction, each a second after its parent)."""
        try:
            head = int(self.w3.eth.get_block("latest")["timestamp"])
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        return max(head + 1, int(time.time()))

    def contract_clock(self) -> datetime:
        """The time a contract call sent now is checked at (:meth:`next_block_time`), as an aware datetime;
        the gateway's clock while the chain is unreachable (a check against it only gets stricter)."""
        try:
            seconds = self.next_block_time()
        except LedgerError:
            return datetime.now(UTC)
        return max(datetime.now(UTC), from_unix(seconds))

    def registry_changed(self, from_block: int, to_block: int) -> bool:
        """Whether OrgRegistry (keys, roles, accounts...) or EnvMonitoring (stations and their operators)
        emitted any event in [from_block, to_block]."""
        if to_block < from_block:
            return False
        try:
            logs = self.w3.eth.get_logs(
                {
                    "address": [self.registry.address, self.env_monitoring.address],
                    "fromBlock": from_block,
                    "toBlock": to_block,
                }
            )
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        return len(logs) > 0

    def rx_status(self, rx_id: str) -> dict[str, Any] | None:
        """The Prescriptions entry of ``rx_id`` (None if the chain does not know it)."""
        try:
            rx = self.prescriptions.functions.statusOf(chain_key("rx", rx_id)).call()
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        status = ("none", "issued", "dispensed", "revoked")[rx[0]]
        if status == "none":
            return None
        return {
            "status": status,
            "issuer": bytes(rx[1]).rstrip(b"\0").decode("utf-8", "replace"),
            "dispenser": bytes(rx[2]).rstrip(b"\0").decode("utf-8", "replace") or None,
            "expires_at": int(rx[3]),
            "issue_digest": bytes(rx[7]).hex(),
            "close_digest": bytes(rx[8]).hex(),
        }

    def station(self, mn: str) -> ChainStation | None:
        """The monitoring point ``mn`` as EnvMonitoring registered it, or None."""
        try:
            st = self.env_monitoring.functions.stationOf(chain_key("station", mn)).call()
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        operator = bytes(st[0]).rstrip(b"\0")
        if not operator:
            return None
        return ChainStation(mn=mn, operator=operator.decode("utf-8", "replace"), active=bool(st[2]))

    def share_request_status(self, request_id: str) -> str | None:
        """The DataSharing status of a request (pending, consented, revoked), None if the chain has none."""
        try:
            req = self.data_sharing.functions.requestOf(chain_key("share-request", request_id)).call()
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        return (None, "pending", "consented", "revoked")[req[0]]

    def dataset_owner(self, dataset: str) -> str | None:
        """The organisation that registered ``dataset`` in DataSharing, or None."""
        try:
            ds = self.data_sharing.functions.datasetOf(chain_key("dataset", dataset)).call()
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        owner = bytes(ds[0]).rstrip(b"\0")
        return owner.decode("utf-8", "replace") if owner else None

    def anchored_root(self, size: int) -> bytes | None:
        """The root ProvenanceLog holds for ``size`` (None if never anchored)."""
        try:
            root = bytes(self.log.functions.rootAt(size).call())
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        return None if root == b"\0" * 32 else root

    def anchor_state(self) -> AnchorState:
        """The latest anchor and the growth bound (the anchorer extends the former within the latter)."""
        try:
            latest = self.log.functions.latest().call()
            max_growth = int(self.log.functions.maxGrowth().call())
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        return AnchorState(size=int(latest[0]), root=bytes(latest[1]), max_growth=max_growth)

    def find_anchor(self, size: int, root: bytes) -> AnchorReceipt | None:
        """The transaction that anchored exactly (size, root), or None if the chain holds no such anchor.

        Re-sending an anchor the chain already holds is a successful no-op without an ``Anchored`` event:
        a bundle citing that transaction would fail its anchor step, so the original one is looked up.
        """
        if self.anchored_root(size) != root:
            return None
        try:
            events = self.log.events.Anchored.get_logs(argument_filters={"treeSize": size}, from_block=0)
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        for ev in reversed(events):  # the newest: after a committee void the same (size, root) may recur
            if bytes(ev["args"]["root"]) == root:
                return AnchorReceipt(
                    tx_hash=ev["transactionHash"].to_0x_hex(),
                    block_number=int(ev["blockNumber"]),
                    block_hash=ev["blockHash"].to_0x_hex(),
                )
        raise LedgerError(f"tree size {size} is anchored but its Anchored event was not found")

    def holds_record(self, kind: str, record_id: str, facts: Mapping[str, Any]) -> bool:
        """Whether the domain contract already holds this record's call (mined before a crash).

        Compares the digest the contract stored (or emitted) for the record's subject with the record id;
        ``share.access`` asks whether DataSharing recorded the record id as an access digest (a repeat
        reverts with ``DuplicateAccess``).
        """
        try:
            if kind == "share.access":
                try:
                    return bool(self.data_sharing.functions.accessRecorded(bytes.fromhex(record_id)).call())
                except ContractLogicError:
                    # A DataSharing deployed before accessRecorded existed (a network resumed from an older
                    # checkout) has no such view; it never refused a repeat, so the revert was a real refusal.
                    return False
            if kind.startswith("rx."):
                rx = self.rx_status(str(facts.get("rx_id")))
                if rx is None:
                    return False
                if kind == "rx.issue":
                    return bool(rx["issue_digest"] == record_id)
                closed = "dispensed" if kind == "rx.dispense" else "revoked"
                return bool(rx["status"] == closed and rx["close_digest"] == record_id)
            request = chain_key("share-request", str(facts.get("request_id", "")))
            if kind == "share.request":
                return bytes(self.data_sharing.functions.requestOf(request).call()[3]).hex() == record_id
            event = {"share.consent": "ConsentGranted", "share.revoke_consent": "ConsentWithdrawn"}.get(kind)
            if event is None:
                return False
            logs = self.data_sharing.events[event].get_logs(
                argument_filters={"requestId": request}, from_block=0
            )
        except CHAIN_ERRORS as exc:
            raise LedgerError(f"chain unavailable: {exc}") from exc
        return any(bytes(ev["args"]["digest"]).hex() == record_id for ev in logs)

    # --- writes --------------------------------------------------------------------------------------

    def _send(self, org: str, fn: Any) -> Any:
        acct = self.account(org)
        with self._send_locks[org]:
            try:
                return transact(self.w3, fn, acct)
            except ContractReverted:
                raise
            except ContractLogicError as exc:
                raise decode_revert(exc) from exc
            except CHAIN_ERRORS as exc:
                raise LedgerError(f"chain unavailable: {exc}") from exc

    def anchor(self, size: int, root: bytes, proof: Sequence[bytes]) -> AnchorReceipt:
        """Anchor (size, root) in ProvenanceLog with the log operator's account; ``proof`` is the RFC 9162
        consistency proof from the latest anchored size (the contract checks it; empty for the first)."""
        fn = self.log.functions.anchor(size, root, list(proof))
        receipt = self._send(self.log_info["operator_org"], fn)
        return AnchorReceipt(
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            block_hash=receipt["blockHash"].to_0x_hex(),
        )

    def workflow_call(
        self, kind: str, org: str, record_id: str, payload_digest: str, facts: Mapping[str, Any]
    ) -> str | None:
        """Send the domain-contract call of a workflow record; returns the tx hash (None: kind has none)."""
        fn = self._workflow_fn(kind, record_id, payload_digest, facts)
        if fn is None:
            return None
        receipt = self._send(org, fn)
        tx: str = receipt["transactionHash"].to_0x_hex()
        return tx

    def _workflow_fn(self, kind: str, record_id: str, payload_digest: str, facts: Mapping[str, Any]) -> Any:
        digest = bytes.fromhex(record_id)
        rx = self.prescriptions.functions
        share = self.data_sharing.functions
        if kind == "rx.issue":
            return rx.issue(chain_key("rx", facts["rx_id"]), digest, to_unix(facts["expires_at"]))
        if kind == "rx.dispense":
            return rx.dispense(chain_key("rx", facts["rx_id"]), digest)
        if kind == "rx.revoke":
            return rx.revoke(chain_key("rx", facts["rx_id"]), digest)
        request = chain_key("share-request", str(facts.get("request_id", "")))
        if kind == "share.request":
            return share.request(request, chain_key("dataset", facts["dataset"]), digest)
        if kind == "share.consent":
            scope = bytes.fromhex(payload_digest)  # the consent document (scope, purpose, expiry)
            return share.consent(request, scope, to_unix(facts["expires_at"]), digest)
        if kind == "share.access":
            return share.recordAccess(request, digest)
        if kind == "share.revoke_consent":
            return share.revokeConsent(request, digest)
        if kind == "party.record":
            return self.party_records.functions.addRecord(PARTY_KINDS[facts["type"]], digest)
        return None


# PartyRecords keeps an open uint8 numbering of record types (0 invalid): ours, append only.
PARTY_KINDS = {"meeting": 1, "study": 2, "dues": 3, "membership": 4, "transfer": 5}
WORKFLOW_KINDS = frozenset(
    {
        "rx.issue",
        "rx.dispense",
        "rx.revoke",
        "share.request",
        "share.consent",
        "share.access",
        "share.revoke_consent",
        "party.record",
    }
)
