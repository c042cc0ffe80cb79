"""The node's fork and chain classes, built by configuration (py-evm ``configure``), not by patching.

``ShanchengVM`` is Cancun plus: the 国密 precompiles merged into the computation's ``_precompiles``, a
fixed block gas limit (a permissioned chain has no miners voting it up or down), and transaction and
receipt tries built in one pass (``provenance/chain/trie.py``: same roots and nodes, ~10x faster), and two
opcodes that note what ``eth_estimateGas`` needs to know to trust one run (SSTORE: the least gas left at
any SSTORE; GAS: that the code read its gas). Cancun's
consensus is ``PosConsensus``, whose ``validate_seal`` is a no-op: sealing is ours, with SM2, beside the
block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth import constants
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, WithdrawalAPI
from eth.chains.base import MiningChain
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.cancun.computation import CancunComputation
from eth.vm.forks.cancun.headers import create_cancun_header_from_parent
from eth.vm.forks.cancun.state import CancunState
from eth.vm.opcode import _FastOpcode
from eth.vm.opcode_values import GAS, SSTORE
from toolz import merge

from chain_node.genesis import Genesis
from chain_node.precompiles import MODEXP_ADDRESS, PRECOMPILES, bounded_modexp
from provenance.chain.trie import trie_root_and_nodes


def _observed(opcode: Any, note: Any) -> Any:
    """``opcode`` preceded by ``note(computation)``, both before any gas of the opcode is charged."""
    assert opcode.gas_cost == 0 or note is _note_gas_read, "SSTORE must charge dynamically"

    def logic(computation: Any) -> None:
        note(computation)
        opcode(computation)

    return _FastOpcode(logic, opcode.mnemonic, 0)


def _note_sstore(computation: Any) -> None:
    # EIP-2200: an SSTORE fails when 2300 gas or less is left; eth_estimateGas checks its answer with this
    left = computation.get_gas_remaining()
    if left < computation.min_sstore_gas:
        computation.min_sstore_gas = left


def _note_gas_read(computation: Any) -> None:
    computation.reads_gas = True


class ShanchengComputation(CancunComputation):
    """Cancun computation with SM3 and SM2-verify precompiles, modexp's inputs bounded, and SSTORE/GAS
    observed for estimates."""

    _precompiles = merge(
        CancunComputation.get_precompiles(),
        PRECOMPILES,
        {MODEXP_ADDRESS: bounded_modexp(CancunComputation.get_precompiles()[MODEXP_ADDRESS])},
    )
    opcodes = {  # noqa: RUF012 - py-evm's own class-level table, replaced whole, never mutated
        **CancunComputation.opcodes,
        SSTORE: _observed(CancunComputation.opcodes[SSTORE], _note_sstore),
        GAS: _observed(CancunComputation.opcodes[GAS], _note_gas_read),
    }
    min_sstore_gas: int = 1 << 256  # least gas left when an SSTORE of this frame began
    reads_gas: bool = False  # the GAS opcode ran in this frame


class ShanchengState(CancunState):
    """Cancun state using :class:`ShanchengComputation`."""

    computation_class = ShanchengComputation


def make_vm_class(gas_limit: int) -> type[CancunVM]:
    """The fork class for a chain whose genesis fixes ``gas_limit``."""

    def create_header_from_parent(parent: BlockHeaderAPI | None, **params: Any) -> BlockHeaderAPI:
        params.setdefault("gas_limit", gas_limit)
        return create_cancun_header_from_parent(parent, **params)  # type: ignore[no-any-return]

    return type(
        "ShanchengVM",
        (CancunVM,),
        {
            "fork": "shancheng-cancun",
            "_state_class": ShanchengState,
            "create_header_from_parent": staticmethod(create_header_from_parent),
            "set_block_transactions_and_withdrawals": _set_block_transactions_and_withdrawals,
        },
    )


def _set_block_transactions_and_withdrawals(
    self: CancunVM,
    base_block: BlockAPI,
    new_header: BlockHeaderAPI,
    transactions: Sequence[SignedTransactionAPI],
    receipts: Sequence[ReceiptAPI],
    withdrawals: Sequence[WithdrawalAPI] | None = None,
) -> BlockAPI:
    """py-evm's ``VM.set_block_transactions_and_withdrawals`` with the one-pass trie builder."""
    tx_root, tx_nodes = trie_root_and_nodes([tx.encode() for tx in transactions])
    self.chaindb.persist_trie_data_dict(tx_nodes)
    receipt_root, receipt_nodes = trie_root_and_nodes([r.encode() for r in receipts])
    self.chaindb.persist_trie_data_dict(receipt_nodes)
    block_fields: dict[str, Any] = {"transactions": transactions}
    header_fields: dict[str, Any] = {"transaction_root": tx_root, "receipt_root": receipt_root}
    if withdrawals:
        w_root, w_nodes = trie_root_and_nodes([w.encode() for w in withdrawals])
        self.chaindb.persist_trie_data_dict(w_nodes)
        block_fields["withdrawals"] = withdrawals
        header_fields["withdrawals_root"] = w_root
    block_fields["header"] = new_header.copy(**header_fields)
    return base_block.copy(**block_fields)


def make_chain_class(genesis: Genesis) -> type[MiningChain]:
    """A MiningChain class for this genesis (one fork from block 0)."""
    return MiningChain.configure(
        __name__="ShanchengChain",
        vm_configuration=((0, make_vm_class(genesis.gas_limit)),),
        chain_id=genesis.chain_id,
    )


def genesis_params(genesis: Genesis) -> dict[str, Any]:
    """py-evm genesis header parameters."""
    return {
        "difficulty": 0,
        "gas_limit": genesis.gas_limit,
        "timestamp": genesis.timestamp,
        "base_fee_per_gas": genesis.base_fee_per_gas,
        "coinbase": constants.ZERO_ADDRESS,
        "extra_data": b"shancheng",
        "nonce": b"\x00" * 8,
        "mix_hash": constants.ZERO_HASH32,
    }


def genesis_state(genesis: Genesis) -> dict[bytes, dict[str, Any]]:
    """py-evm genesis state: the funded accounts."""
    return {
        bytes.fromhex(addr[2:]): {"balance": bal, "nonce": 0, "code": b"", "storage": {}}
        for addr, bal in genesis.alloc.items()
    }
