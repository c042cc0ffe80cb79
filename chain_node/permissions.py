"""Who may send transactions: the genesis admins and allowlist, else ``OrgRegistry.isPermitted(address)``
on the head state; contract creation by admins only (docs/design/node-storage.md, "Admission")."""

from __future__ import annotations

from collections.abc import Callable

from eth.abc import BlockHeaderAPI
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain_node.calls import RunnerPool
from chain_node.errors import CreateNotPermitted, RpcError
from chain_node.genesis import Genesis
from provenance.errors import NotPermitted

IS_PERMITTED_SELECTOR = keccak(text="isPermitted(address)")[:4]


class Permissions:
    """The genesis's lists and the permission contract it names, asked through the node's read runners."""

    def __init__(self, *, genesis: Genesis, runners: RunnerPool, head: Callable[[], BlockHeaderAPI]) -> None:
        self.admins = {bytes.fromhex(a[2:]) for a in genesis.admins}
        self.allow = {bytes.fromhex(a[2:]) for a in genesis.allowlist} | self.admins
        self.contract = (
            bytes.fromhex(genesis.permission_contract[2:]) if genesis.permission_contract else None
        )
        self._runners = runners
        self._head = head
        self._cache: dict[bytes, tuple[int, bool]] = {}  # address -> (head number, answer)

    def is_permitted(self, address: bytes) -> bool:
        """Genesis allowlist/admins, else OrgRegistry.isPermitted(address) on the head state (if named)."""
        if address in self.allow:
            return True
        if self.contract is None:
            return False
        head = self._head().block_number
        cached = self._cache.get(address)
        if cached is not None and cached[0] == head:
            return cached[1]
        data = IS_PERMITTED_SELECTOR + bytes(12) + address
        try:
            with self._runners.runner() as r:
                out = r.call({"to": self.contract, "data": data}, None)
            ok = len(out) >= 32 and int.from_bytes(out[:32], "big") == 1
        except RpcError:
            ok = False
        self._cache[address] = (head, ok)
        return ok

    def check(self, sender: bytes, *, creates: bool) -> None:
        """Raise NotPermitted unless ``sender`` may send this transaction (``creates``: a contract)."""
        if not self.is_permitted(sender):
            raise NotPermitted(
                f"sender {to_checksum_address(sender)} is not permitted by genesis or OrgRegistry",
                details={"sender": to_checksum_address(sender)},
            )
        if creates and sender not in self.admins:
            raise CreateNotPermitted(
                f"contract creation by {to_checksum_address(sender)} is not permitted (admins only)",
                details={"sender": to_checksum_address(sender)},
            )
