"""The gateway's view of the chain: web3.py contract objects built from the committed artifacts.

Reads (organisations, keys, and the domains' view functions through ``gateway.services.chain``) serve the
write path's checks; writes (anchors, the domains' contract calls) are sent by the workers with the
transaction account of the organisation concerned, so the contracts' role gates see the real organisation.
The manifest (``devnet/deploy.py`` writes it) names the chain, the contracts and the accounts' key files.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
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

from adapters import ContractCall
from provenance.chain.contracts import (
    REGISTRY,
    ContractReverted,
    Role,
    Sent,
    at,
    confirm,
    decode_revert,
    org_id,
    submit,
    transact,
)
from provenance.chain.registry import registry_org
from provenance.errors import LedgerError, ProvenanceError
from provenance.manifest import Manifest
from provenance.orgs import OrgEntry
from provenance.timestamps import from_unix

LOG = "ProvenanceLog"

# The manifest's role names are the enum's, lower case.
ROLE_NAMES = {r: r.name.lower() for r in Role}


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


@contextlib.contextmanager
def chain_errors() -> Iterator[None]:
    """The one mapping of what web3.py raises: a revert is :class:`ContractReverted` naming the contract's
    custom error; anything else the node or the transport raises means the chain is unavailable
    (:class:`LedgerError`, which callers answer with CHAIN_UNAVAILABLE or a retry)."""
    try:
        yield
    except ContractReverted:
        raise
    except ContractLogicError as exc:
        raise decode_revert(exc) from exc
    except CHAIN_ERRORS as exc:
        raise LedgerError(f"chain unavailable: {exc}") from exc


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
        self._contracts: dict[str, Contract] = {}
        self._places: dict[str, dict[str, Any]] = {}
        self.registry = self.contract(REGISTRY)
        self.log = self.contract(LOG)
        self._accounts: dict[str, LocalAccount] = {}
        self._send_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def contract(self, name: str) -> Contract:
        """The contract ``name`` of the network manifest, bound to its deployment (LedgerError if the
        manifest names none: a domain's contract this network was not deployed with)."""
        found = self._contracts.get(name)
        if found is None:
            address = self.manifest.contracts.get(name)
            if not isinstance(address, str):
                raise LedgerError(f"the network manifest names no contract {name!r}")
            found = self._contracts[name] = at(self.w3, name, address)
        return found

    def call(self, contract: str, function: str, *args: Any) -> Any:
        """The result of a view function, read now."""
        fn = getattr(self.contract(contract).functions, function)
        with chain_errors():
            return fn(*args).call()

    def events(self, contract: str, event: str, **filters: Any) -> list[Mapping[str, Any]]:
        """The arguments of every ``event`` of ``contract`` matching the indexed ``filters``, oldest first."""
        ev = self.contract(contract).events[event]
        with chain_errors():
            logs = ev.get_logs(argument_filters=filters or None, from_block=0)
        return [dict(lg["args"]) for lg in logs]

    def transaction_place(self, tx_hash: str) -> dict[str, Any]:
        """Where a confirmed transaction is: chain id, the contract it called, its hash, block number and
        hash (a bundle's ``batch_anchor`` without its root). Kept: a confirmed transaction stays put."""
        found = self._places.get(tx_hash)
        if found is None:
            with chain_errors():
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            found = {
                "chain_id": self.chain_id,
                "contract": receipt["to"],
                "tx_hash": receipt["transactionHash"].to_0x_hex(),
                "block_number": int(receipt["blockNumber"]),
                "block_hash": receipt["blockHash"].to_0x_hex(),
            }
            if len(self._places) >= 4096:
                self._places.clear()
            self._places[tx_hash] = found
        return dict(found)

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
        with chain_errors():
            return int(self.w3.eth.block_number)

    def org(self, org: str) -> OrgEntry | None:
        """The organisation as OrgRegistry holds it, or None if it is not registered."""
        try:
            oid = org_id(org)
        except ValueError:
            return None
        try:
            info = self.call(REGISTRY, "getOrg", oid)
        except ContractReverted:
            return None
        return registry_org(org, info, self.call(REGISTRY, "keysOf", oid))

    def org_ids(self) -> list[str]:
        """Every registered organisation id."""
        return [bytes(i).rstrip(b"\0").decode("utf-8", "replace") for i in self.call(REGISTRY, "orgIds")]

    def next_block_time(self) -> int:
        """The earliest ``block.timestamp`` the next block can have: after the head's, not before now (the
        embedded node's and Besu's rule). Contracts compare their time fields with it; the chain's clock
        may run ahead of the gateway's (a block per transaction, each a second after its parent)."""
        with chain_errors():
            head = int(self.w3.eth.get_block("latest")["timestamp"])
        return max(head + 1, int(time.time()))

    def contract_clock(self) -> datetime:
        """The time a contract call sent now is checked at (:meth:`next_block_time`), as an aware datetime;
        the gateway's clock while the chain is unreachable (a check against it only gets stricter)."""
        try:
            seconds = self.next_block_time()
        except LedgerError:
            return datetime.now(UTC)
        return max(datetime.now(UTC), from_unix(seconds))

    def changed(self, contracts: Sequence[str], from_block: int, to_block: int) -> bool:
        """Whether any of ``contracts`` (those of this network) emitted an event in [from_block, to_block]."""
        if to_block < from_block:
            return False
        addresses = [self.contract(n).address for n in contracts if n in self.manifest.contracts]
        with chain_errors():
            logs = self.w3.eth.get_logs({"address": addresses, "fromBlock": from_block, "toBlock": to_block})
        return len(logs) > 0

    def anchored_root(self, size: int) -> bytes | None:
        """The root ProvenanceLog holds for ``size`` (None if never anchored)."""
        root = bytes(self.call(LOG, "rootAt", size))
        return None if root == b"\0" * 32 else root

    def anchor_state(self) -> AnchorState:
        """The latest anchor and the growth bound (the anchorer extends the former within the latter)."""
        latest = self.call(LOG, "latest")
        max_growth = int(self.call(LOG, "maxGrowth"))
        return AnchorState(size=int(latest[0]), root=bytes(latest[1]), max_growth=max_growth)

    def find_anchor(self, size: int, root: bytes) -> AnchorReceipt | None:
        """The transaction that anchored exactly (size, root), or None if the chain holds no such anchor.

        Re-sending an anchor the chain already holds is a successful no-op without an ``Anchored`` event:
        a bundle citing that transaction would fail its anchor step, so the original one is looked up.
        """
        if self.anchored_root(size) != root:
            return None
        with chain_errors():
            events = self.log.events.Anchored.get_logs(argument_filters={"treeSize": size}, from_block=0)
        for ev in reversed(events):  # the newest: after a committee void the same (size, root) may recur
            if bytes(ev["args"]["root"]) == root:
                return AnchorReceipt(
                    tx_hash=ev["transactionHash"].to_0x_hex(),
                    block_number=int(ev["blockNumber"]),
                    block_hash=ev["blockHash"].to_0x_hex(),
                )
        raise LedgerError(f"tree size {size} is anchored but its Anchored event was not found")

    # --- writes --------------------------------------------------------------------------------------

    def _send(self, org: str, fn: Any) -> Any:
        acct = self.account(org)
        with self._send_locks[org], chain_errors():
            return transact(self.w3, fn, acct)

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

    def send(self, org: str, call: ContractCall) -> str:
        """Send a domain contract's call with ``org``'s transaction account; its transaction hash."""
        with self.sender(org) as sender:
            return sender.confirm(sender.submit(call))

    @contextlib.contextmanager
    def sender(self, org: str) -> Iterator[Sender]:
        """``org``'s account for several calls in a row, its send lock held throughout (the anchorer's
        sends with the same account wait, so the nonces stay consecutive)."""
        acct = self.account(org)
        with self._send_locks[org]:
            yield Sender(self, acct)


class Sender:
    """One account's calls sent one after another without waiting for each receipt: consecutive nonces, so
    the chain applies them in the order sent whatever it mines together. Each gas estimate runs when the
    calls before it were sent; a revert there raises ContractReverted and sends nothing (the nonce stays
    free). :meth:`confirm` waits for a receipt; one that reverted when mined raises ContractReverted."""

    def __init__(self, ledger: Ledger, account: LocalAccount) -> None:
        self._ledger = ledger
        self._account = account
        self._nonce: int | None = None

    def submit(self, call: ContractCall) -> Sent:
        fn = getattr(self._ledger.contract(call.contract).functions, call.function)(*call.args)
        w3 = self._ledger.w3
        try:
            with chain_errors():
                if self._nonce is None:  # asked once a run: every nonce after it is this account's own
                    self._nonce = int(w3.eth.get_transaction_count(self._account.address, "pending"))
                sent = submit(w3, fn, self._account, self._nonce)
        except LedgerError:
            self._nonce = None  # the node may or may not have taken it: asked again before the next send
            raise
        self._nonce += 1
        return sent

    def confirm(self, sent: Sent) -> str:
        """The transaction hash of a sent call, once its receipt says it succeeded."""
        with chain_errors():
            receipt = confirm(self._ledger.w3, sent)
        tx: str = receipt["transactionHash"].to_0x_hex()
        return tx
