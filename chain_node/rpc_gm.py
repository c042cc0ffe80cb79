"""The ``gm_`` methods (seals, validators, node info) and the dev namespace (``--dev-rpc`` only)."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address

from chain_node.encoding import Raw, qty
from chain_node.node import Node
from chain_node.params import p_quantity, param
from chain_node.rpc_eth import EthMethods


class GmMethods:
    """``gm_`` and ``evm_`` handlers bound to one node (block tags read as ``eth_`` reads them)."""

    def __init__(self, node: Node, eth: EthMethods) -> None:
        self.node = node
        self._tag = eth.block_tag

    # -- gm_ namespace -----------------------------------------------------------------------------------

    def get_seal(self, params: list[Any]) -> Any:
        """gm_getSeal(blockNumber): the block's seal (see provenance.chain.seal)."""
        n = self._tag(param(params, 0, "latest"))
        raw = self.node.index.get_seal_json(self.node.head_number if n is None else n)
        return None if raw is None else Raw(raw)

    def sealed_block(self, params: list[Any]) -> Any:
        """gm_sealedBlock(blockNumber): {"block", "seal"} in one answer."""
        n = self._tag(param(params, 0, "latest"))
        n = self.node.head_number if n is None else n
        block, seal = self.node.index.get_block_raw(n), self.node.index.get_seal_json(n)
        if block is None or seal is None:
            return None
        return Raw(b'{"block":' + block + b',"seal":' + seal + b"}")

    def validators(self, params: list[Any]) -> Any:
        """gm_validators: the genesis validators (id and SM2 public key PEM)."""
        return [v.model_dump() for v in self.node.genesis.validators]

    def node_info(self, params: list[Any]) -> Any:
        """gm_nodeInfo: chain id, head, block time and clock bound, admins, permissioning, precompiles."""
        g = self.node.genesis
        return {
            "chainId": qty(g.chain_id),
            "head": qty(self.node.head_number),
            "blockTime": self.node.block_time,
            "maxClockLead": self.node.max_clock_lead,
            "admins": g.admins,
            "permissionContract": g.permission_contract,
            "precompiles": {
                "sm3": to_checksum_address("0x" + "00" * 18 + "5001"),
                "sm2Verify": to_checksum_address("0x" + "00" * 18 + "5002"),
            },
        }

    # -- dev namespace (only with dev_rpc) ---------------------------------------------------------------

    def increase_time(self, params: list[Any]) -> Any:
        """evm_increaseTime(seconds): later blocks are stamped that much later; returns the total offset."""
        return self.node.increase_time(p_quantity(param(params, 0), "seconds", 1 << 32))

    def mine(self, params: list[Any]) -> Any:
        """evm_mine: produce a block now, empty if nothing is pending."""
        self.node.mine_once(allow_empty=True)
        return "0x0"
