"""Re-verify a chain from genesis over JSON-RPC: every header hash, every SM2 seal, the SM3 seal chain.

Uses web3.py only (``eth_getBlockByNumber`` and the node's ``gm_getSeal``, batched through the
provider). Raises :class:`ChainInvalid` naming the first bad block; returns a :class:`ChainReport`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rlp
from eth_utils.crypto import keccak
from web3 import Web3

from provenance.chain.connect import connect
from provenance.chain.seal import GENESIS_PREV, Seal, validator_id
from provenance.crypto import SM2PublicKey
from provenance.errors import FormatError, LedgerError, VerificationError

BATCH = 100
MAX_QUANTITY = 1 << 63  # a block number or chain id past it is no node's (the EVM's own bound is 2**64)

# Cancun header fields in RLP order, with how the JSON-RPC block names them.
HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("parentHash", "bytes"),
    ("sha3Uncles", "bytes"),
    ("miner", "bytes"),
    ("stateRoot", "bytes"),
    ("transactionsRoot", "bytes"),
    ("receiptsRoot", "bytes"),
    ("logsBloom", "bytes"),
    ("difficulty", "int"),
    ("number", "int"),
    ("gasLimit", "int"),
    ("gasUsed", "int"),
    ("timestamp", "int"),
    ("extraData", "bytes"),
    ("mixHash", "bytes"),
    ("nonce", "bytes"),
    ("baseFeePerGas", "int"),
    ("withdrawalsRoot", "bytes"),
    ("blobGasUsed", "int"),
    ("excessBlobGas", "int"),
    ("parentBeaconBlockRoot", "bytes"),
)


class ChainInvalid(VerificationError, code="CHAIN_INVALID", step="chain"):
    """A block whose header, seal or SM3 link does not verify."""

    def __init__(self, *, block: int, reason: str) -> None:
        super().__init__(f"block {block}: {reason}", details={"block": block, "reason": reason})
        self.block = block
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What a successful verification covered."""

    chain_id: int
    blocks: int  # blocks verified, genesis included
    head_number: int
    head_hash: str
    head_seal_digest: str
    validators: tuple[str, ...]
    validator_source: str  # "pinned" (given by the caller) or "node" (gm_validators: trust on first use)


def _bytes(v: Any) -> bytes:
    if not isinstance(v, str) or not v.startswith("0x"):
        raise FormatError(f"expected 0x-hex, got {v!r}")
    return bytes.fromhex(v[2:])


def _int(v: Any) -> int:
    """A JSON-RPC quantity: 0x and at most 64 hex digits (a longer one is no block field's)."""
    if not isinstance(v, str) or not v.startswith("0x") or len(v) > 66:
        raise FormatError(f"expected a quantity, got {v!r:.80}")
    try:
        return int(v, 16)
    except ValueError:
        raise FormatError(f"expected a quantity, got {v!r:.80}") from None


def header_mismatch(block: dict[str, Any], header_rlp: bytes) -> str | None:
    """Why the JSON block does not describe the header ``header_rlp`` (None if it does)."""
    try:
        fields = rlp.decode(header_rlp)
    except rlp.DecodingError:
        return "headerRlp is not RLP"
    if not isinstance(fields, list) or len(fields) != len(HEADER_FIELDS):
        n = len(fields) if isinstance(fields, list) else 0
        return f"header has {n} fields, expected {len(HEADER_FIELDS)}"
    for raw, (name, kind) in zip(fields, HEADER_FIELDS, strict=True):
        if name not in block:
            return f"block field {name} missing"
        try:
            if kind == "int":
                same = int.from_bytes(raw, "big") == _int(block[name])
            else:
                same = bytes(raw) == _bytes(block[name])
        except (FormatError, ValueError):
            return f"block field {name} is malformed"
        if not same:
            return f"block field {name} differs from the sealed header"
    return None


class ChainVerifier:
    """Verifies a node's chain from genesis, with pinned validator keys or the node's own list."""

    def __init__(self, w3: Web3, *, validator_keys: list[SM2PublicKey] | None = None) -> None:
        self.w3 = w3
        self._pinned = validator_keys

    @classmethod
    def from_rpc(cls, url: str, *, validator_keys: list[SM2PublicKey] | None = None) -> ChainVerifier:
        """A verifier for the node at ``url``."""
        return cls(connect(url), validator_keys=validator_keys)

    def _call(self, method: str, params: list[Any]) -> Any:
        resp = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in resp:
            raise LedgerError(f"{method} failed: {resp['error']}")
        return resp.get("result")

    def _fetch(self, lo: int, hi: int) -> list[tuple[Any, Any]]:
        reqs: list[tuple[Any, Any]] = []
        for n in range(lo, hi + 1):
            reqs.append(("eth_getBlockByNumber", [hex(n), False]))
            reqs.append(("gm_getSeal", [hex(n)]))
        provider: Any = self.w3.provider
        resps = provider.make_batch_request(reqs)
        if not isinstance(resps, list):
            raise LedgerError(f"batch request failed: {str(resps)[:200]}")
        # One answer to each request, told apart by its id (web3 numbers a batch's requests in a row): a node
        # answering a batch with fewer (an empty list: the sixth attack's "chain valid" over no block) or
        # other answers is refused, never read as blocks that verified.
        ids = [r.get("id") if isinstance(r, dict) else None for r in resps]
        ints = [i for i in ids if type(i) is int]
        if (
            len(resps) != len(reqs)
            or len(ints) != len(ids)
            or sorted(ints) != list(range(min(ints), max(ints) + 1))
        ):
            raise LedgerError(
                f"the node answered a batch of {len(reqs)} requests (blocks {lo} to {hi}) with "
                f"{len(resps)} answers, not one to each"
            )
        resps = sorted(resps, key=lambda r: r["id"])
        out = []
        for i in range(0, len(resps), 2):
            b, s = resps[i], resps[i + 1]
            for r in (b, s):
                if "error" in r:
                    raise LedgerError(f"node error: {r['error']}")
            out.append((b.get("result"), s.get("result")))
        return out

    def _keys(self) -> tuple[dict[str, SM2PublicKey], str]:
        if self._pinned:
            return {validator_id(k): k for k in self._pinned}, "pinned"
        vals = self._call("gm_validators", [])
        keys = {}
        for v in vals or []:
            k = SM2PublicKey.from_pem(v["public_key_pem"].encode())
            keys[validator_id(k)] = k
        if not keys:
            raise LedgerError("node names no validators")
        return keys, "node"

    def verify(self, *, progress: Callable[[int, int], None] | None = None) -> ChainReport:
        """Verify blocks 0..head; raise ChainInvalid at the first bad one."""
        keys, source = self._keys()
        head = _int(self._call("eth_blockNumber", []))
        chain_id = _int(self._call("eth_chainId", []))
        # A number no chain reaches (a 4,000-digit head crashed rich's progress bar): refused before use.
        if head >= MAX_QUANTITY or chain_id >= MAX_QUANTITY:
            raise LedgerError(f"the node's head {head:#x} or chain id {chain_id:#x} is past any chain's")
        prev_digest = GENESIS_PREV
        prev_hash: bytes | None = None
        head_hash = b""
        for lo in range(0, head + 1, BATCH):
            hi = min(head, lo + BATCH - 1)
            for offset, (block, seal_json) in enumerate(self._fetch(lo, hi)):
                n = lo + offset
                prev_digest, prev_hash = self._verify_block(n, block, seal_json, keys, prev_digest, prev_hash)
                head_hash = prev_hash
            if progress is not None:
                progress(hi + 1, head + 1)
        return ChainReport(
            chain_id=chain_id,
            blocks=head + 1,
            head_number=head,
            head_hash="0x" + head_hash.hex(),
            head_seal_digest="0x" + prev_digest.hex(),
            validators=tuple(sorted(keys)),
            validator_source=source,
        )

    @staticmethod
    def _verify_block(
        n: int,
        block: Any,
        seal_json: Any,
        keys: dict[str, SM2PublicKey],
        prev_digest: bytes,
        prev_hash: bytes | None,
    ) -> tuple[bytes, bytes]:
        if not isinstance(block, dict):
            raise ChainInvalid(block=n, reason="block missing")
        if seal_json is None:
            raise ChainInvalid(block=n, reason="seal missing")
        try:
            seal = Seal.from_json(seal_json)
            block_hash = _bytes(block.get("hash"))
            parent_hash = _bytes(block.get("parentHash"))
        except FormatError as exc:
            raise ChainInvalid(block=n, reason=f"malformed: {exc.message}") from exc
        if seal.number != n or _int(block.get("number")) != n:
            raise ChainInvalid(block=n, reason="block or seal carries the wrong number")
        if keccak(seal.header_rlp) != block_hash:
            raise ChainInvalid(block=n, reason="block hash is not keccak(rlp(sealed header))")
        if seal.block_hash != block_hash:
            raise ChainInvalid(block=n, reason="seal names a different block hash")
        why = header_mismatch(block, seal.header_rlp)
        if why:
            raise ChainInvalid(block=n, reason=why)
        if prev_hash is not None and parent_hash != prev_hash:
            raise ChainInvalid(block=n, reason="parentHash is not the previous block's hash")
        key = keys.get(seal.validator)
        if key is None:
            raise ChainInvalid(block=n, reason=f"sealed by unknown validator {seal.validator}")
        why = seal.check(key, prev_digest)
        if why:
            raise ChainInvalid(block=n, reason=why)
        return seal.seal_digest, block_hash


def verify_chain(
    url: str,
    *,
    validator_keys: list[SM2PublicKey] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ChainReport:
    """Verify the chain served at ``url`` from genesis; raise ChainInvalid naming the first bad block."""
    return ChainVerifier.from_rpc(url, validator_keys=validator_keys).verify(progress=progress)
