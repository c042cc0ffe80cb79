"""Execution without a transaction: eth_call, eth_estimateGas and state reads over committed blocks.

A :class:`CallRunner` owns a py-evm chain over a read-only view of the store, so it never sees half a
block, and the call state of the head (built once per head, reused by every call at it). py-evm objects
are not thread-safe, so a runner serves one thread at a time: :class:`RunnerPool` lends them out, the most
recently used first, to the node's own reads on the event loop and to the RPC's call threads
(``chain_node/rpc_limits.py``) alike; one after the other they all find the same runner, its state hot.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eth.abc import BlockHeaderAPI, ComputationAPI
from eth.exceptions import OutOfGas, Revert, VMError
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth.vm.spoof import SpoofTransaction
from eth_abi.abi import decode
from eth_utils.exceptions import ValidationError

from chain_node.errors import Code, RpcError
from chain_node.store import EvmDB, Store

log = logging.getLogger("chain_node.calls")

SSTORE_SENTRY = 2300  # EIP-2200: an SSTORE with this much gas left or less fails
_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


class CallRunner:
    """Calls, estimates and account reads at any committed block; one thread at a time."""

    def __init__(self, *, store: Store, chain_cls: Any, head: Callable[[], BlockHeaderAPI]) -> None:
        self._db = EvmDB(store, read_only=True)
        self._chain = chain_cls(self._db)
        self._head = head
        self.poisoned = False  # interrupted somewhere unknown: its state may be inconsistent, never reuse
        self._state_cache: tuple[bytes, Any] | None = None
        self.gas_burned = 0  # by every execution so far (an estimate runs several): what a batch is charged

    @contextmanager
    def _at(self, number: int | None) -> Iterator[BlockHeaderAPI]:
        """The header of block ``number`` (None: the head), its state readable until the block ends."""
        # The head is read before the snapshot opens: the miner publishes a head only after its commit,
        # so the snapshot holds that head's state (read after, it could be a block the snapshot lacks).
        head = self._head()
        with self._db.snapshot():
            if number is None or number == head.block_number:
                yield head
            elif number > head.block_number:
                raise RpcError(Code.RESOURCE_NOT_FOUND, f"header not found: block {number}")
            else:
                yield self._chain.get_canonical_block_header_by_number(number)

    def _call_state(self, header: BlockHeaderAPI) -> Any:
        """The state eth_call and eth_estimateGas run in on top of ``header``, as py-evm's
        ``in_costless_state`` builds it (a child block, base fee 0); kept for the head, so that every call
        at the head after the first finds its accounts and trie nodes cached. Callers revert what they ran;
        balance, nonce, code and storage reads at the head use it too (its accounts are the head's).
        """
        cached = self._state_cache
        if cached is not None and cached[0] == header.hash:
            return cached[1]
        vm = self._chain.get_vm(header)
        child = vm.generate_block_from_parent_header_and_coinbase(header, header.coinbase).header
        if hasattr(child, "base_fee_per_gas"):
            child = child.copy(base_fee_per_gas=0)
        prev_hashes = itertools.chain((header.hash,), vm.previous_hashes)
        state = vm.build_state(vm.chaindb.db, child, vm.chain_context, prev_hashes)
        if header.hash == self._head().hash:
            self._state_cache = (header.hash, state)
        return state

    def account(self, address: bytes, number: int | None, what: str, slot: int = 0) -> Any:
        """Balance, nonce, code or storage of an account at a block (None = latest)."""
        with self._at(number) as header:
            if header.hash == self._head().hash:
                state = self._call_state(header)
            else:
                state = self._chain.get_vm(header).state
            if what == "balance":
                return state.get_balance(address)
            if what == "nonce":
                return state.get_nonce(address)
            if what == "code":
                return state.get_code(address)
            return state.get_storage(address, slot)

    def _execute(self, header: BlockHeaderAPI, call: dict[str, Any]) -> tuple[Any, ComputationAPI]:
        state = self._call_state(header)
        sender = call.get("from") or b"\x00" * 20
        gas = call.get("gas") or header.gas_limit // 2  # the most a transaction may use here
        vm_class = self._chain.get_vm_class_for_block_number(header.block_number + 1)
        unsigned = vm_class.create_unsigned_transaction(
            nonce=state.get_nonce(sender),
            gas_price=0,
            gas=gas,
            to=call.get("to") or b"",
            value=call.get("value", 0),
            data=call.get("data", b""),
        )
        tx = SpoofTransaction(unsigned, from_=sender)
        _check_message(call, gas, int(tx.intrinsic_gas))
        snapshot = state.snapshot()
        try:
            comp = state.costless_execute_transaction(tx)
        except ValidationError as exc:
            raise RpcError(Code.EXECUTION_ERROR, str(exc)) from exc
        except VMError as exc:  # raised out of py-evm's message set-up, not a computation's error
            raise RpcError(Code.EXECUTION_ERROR, f"execution failed: {type(exc).__name__}: {exc}") from exc
        except RecursionError as exc:
            # Only with a gas cap raised far past the default: the 63/64 rule keeps calls of 50 M gas near
            # depth 540, ~3,300 levels of Python, within the recursion limit (provenance/_internal/stack.py).
            self.poisoned = True  # it stopped somewhere in py-evm's bookkeeping
            raise RpcError(
                Code.EXECUTION_ERROR,
                "execution nested deeper than this node's stack allows",
                {"code": "CALL_TOO_DEEP"},
            ) from exc
        finally:
            state.revert(snapshot)
        self.gas_burned += int(tx.intrinsic_gas + comp.get_gas_used())
        return tx, comp

    def call(self, call: dict[str, Any], number: int | None) -> bytes:
        """eth_call: the output, or RpcError carrying revert data."""
        with self._at(number) as header:
            _, comp = self._execute(header, call)
        raise_if_error(comp)
        return bytes(comp.output)

    def estimate_gas(self, call: dict[str, Any], number: int | None, *, cap: int | None = None) -> int:
        """eth_estimateGas: one run at the ceiling (half the block, at most ``cap``, at most the call's own
        gas); its measured need when that run proves it suffices, else a check at the need and a binary
        search if short. Out of gas at the ceiling: geth's "gas required exceeds allowance"."""
        with self._at(number) as header:
            cap = header.gas_limit // 2 if cap is None else min(cap, header.gas_limit // 2)
            if call.get("gas") is not None:
                cap = min(cap, call["gas"])
            tx, comp = self._execute(header, {**call, "gas": cap})
            if comp.is_error and isinstance(comp.error, OutOfGas):
                raise RpcError(
                    Code.EXECUTION_ERROR,
                    f"gas required exceeds allowance ({cap})",
                    {"code": "GAS_ALLOWANCE_EXCEEDED", "allowance": cap},
                )
            raise_if_error(comp)
            need = int(tx.intrinsic_gas + comp.get_gas_used())
            if _need_suffices(call, comp, cap - need):
                return need
            lo, hi = need - 1, cap
            _, c2 = self._execute(header, {**call, "gas": need})
            if not c2.is_error:
                return need
            while hi - lo > 1000:
                mid = (lo + hi) // 2
                _, c3 = self._execute(header, {**call, "gas": mid})
                if c3.is_error:
                    lo = mid
                else:
                    hi = mid
            return hi


class RunnerPool:
    """Runners lent to one thread at a time, the most recently used first (its caches hot); as many exist
    as were ever in use at once (the event loop and each call thread)."""

    def __init__(self, make: Callable[[], CallRunner]) -> None:
        self._make = make
        self._free: list[CallRunner] = []
        self._lock = threading.Lock()

    @contextmanager
    def runner(self) -> Iterator[CallRunner]:
        """A runner for the caller's thread until the block ends (dropped if it was interrupted)."""
        with self._lock:
            r = self._free.pop() if self._free else None
        if r is None:
            r = self._make()
        try:
            yield r
        except BaseException as exc:
            if not isinstance(exc, Exception):  # an interrupt (a call's deadline) landed somewhere in it
                r.poisoned = True
            raise
        finally:
            if not r.poisoned:
                with self._lock:
                    self._free.append(r)


def _check_message(call: dict[str, Any], gas: int, intrinsic: int) -> None:
    """What a transaction could not even start with, refused in the words Ethereum clients use (py-evm
    raises these out of its message set-up, or runs a negative gas): init code over EIP-3860's limit, gas
    below the intrinsic cost."""
    data = call.get("data", b"")
    if not call.get("to") and len(data) > MAX_INITCODE_SIZE:
        raise RpcError(
            Code.EXECUTION_ERROR,
            f"max initcode size exceeded: code size {len(data)} limit {MAX_INITCODE_SIZE}",
            {"code": "INITCODE_TOO_LARGE", "limit": MAX_INITCODE_SIZE},
        )
    if gas < intrinsic:
        raise RpcError(
            Code.EXECUTION_ERROR,
            f"intrinsic gas too low: have {gas}, want {intrinsic}",
            {"code": "INTRINSIC_GAS_TOO_LOW", "have": gas, "want": intrinsic},
        )


def raise_if_error(comp: ComputationAPI) -> None:
    """RpcError for a failed execution: geth's revert shape (reason in the message, data in ``data``)."""
    if not comp.is_error:
        return
    if isinstance(comp.error, Revert):
        data = comp.output
        msg = "execution reverted"
        if data[:4] == _ERROR_SELECTOR:
            try:
                msg += ": " + decode(["string"], data[4:])[0]
            except Exception:  # undecodable reason: the raw data still travels in `data`
                log.debug("undecodable revert reason")
        raise RpcError(Code.EXECUTION_REVERTED, msg, "0x" + bytes(data).hex())
    raise RpcError(Code.EXECUTION_ERROR, f"execution failed: {type(comp.error).__name__}: {comp.error}")


def _need_suffices(call: dict[str, Any], comp: ComputationAPI, spare: int) -> bool:
    """Whether a run given ``spare`` gas less than ``comp``'s would have gone exactly the same way.

    With gas G the only gas-dependent steps are: what a CALL/CREATE forwards (63/64 of what is left),
    the GAS opcode, and EIP-2200's refusal of an SSTORE with 2300 gas or less left. A message call with
    no sub-calls, no GAS and every SSTORE still above 2300 after ``spare`` less runs identically, so its
    measured need is the answer, without a second run (one py-evm execution saved per estimate).
    """
    return bool(
        call.get("to")
        and not comp.children
        and not getattr(comp, "reads_gas", True)
        and getattr(comp, "min_sstore_gas", 0) - spare > SSTORE_SENTRY
    )
