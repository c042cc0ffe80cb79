"""Block seal format shared by the node (which makes seals) and the verifier (which checks them).

A seal travels beside each block; the Ethereum header and its keccak hash stay untouched so web3.py
works unchanged. Defined in ``docs/design/block-seal.md``:

    header_sm3  = SM3(rlp(header))
    seal_digest = SM3(DOMAIN ‖ u64be(number) ‖ header_sm3 ‖ prev_seal_digest)
    signature   = SM2-Sign(validator key, message = seal_digest)   # default ID, DER

``prev_seal_digest`` is the previous block's ``seal_digest`` (32 zero bytes for the genesis block), so
the seals form an SM3 hash chain from genesis: changing any header, or any seal, breaks every later link.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from provenance.crypto import SM2PrivateKey, SM2PublicKey, sm3
from provenance.errors import FormatError

DOMAIN = b"shancheng-block-seal-v1\x00"
GENESIS_PREV = bytes(32)
VERSION = 1


def seal_digest(number: int, header_rlp: bytes, prev_seal_digest: bytes) -> bytes:
    """The 32-byte digest a validator signs for block ``number``."""
    if len(prev_seal_digest) != 32:
        raise FormatError("previous seal digest must be 32 bytes")
    return sm3(DOMAIN + struct.pack(">Q", number) + sm3(header_rlp) + prev_seal_digest)


def validator_id(public_key: SM2PublicKey) -> str:
    """A validator's stable name: SM3 hex of its SubjectPublicKeyInfo DER."""
    return public_key.fingerprint()


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _unhex(s: Any, what: str) -> bytes:
    if not isinstance(s, str) or not s.startswith("0x"):
        raise FormatError(f"seal field {what} must be 0x-hex")
    try:
        return bytes.fromhex(s[2:])
    except ValueError as exc:
        raise FormatError(f"seal field {what} is not hex") from exc


@dataclass(frozen=True, slots=True)
class Seal:
    """The seal of one block, as stored beside it and served by ``gm_getSeal``."""

    number: int
    block_hash: bytes  # keccak(rlp(header)): the Ethereum block hash
    header_rlp: bytes
    header_sm3: bytes
    prev_seal_digest: bytes
    seal_digest: bytes
    signature: bytes  # DER SEQUENCE{r, s}
    validator: str  # validator_id of the sealing key

    @classmethod
    def make(
        cls, *, key: SM2PrivateKey, number: int, block_hash: bytes, header_rlp: bytes, prev_seal_digest: bytes
    ) -> Seal:
        """Seal a block with the validator's key."""
        digest = seal_digest(number, header_rlp, prev_seal_digest)
        return cls(
            number=number,
            block_hash=block_hash,
            header_rlp=header_rlp,
            header_sm3=sm3(header_rlp),
            prev_seal_digest=prev_seal_digest,
            seal_digest=digest,
            signature=key.sign(digest),
            validator=validator_id(key.public_key()),
        )

    def to_json(self) -> dict[str, Any]:
        """The wire form (``gm_getSeal`` result)."""
        return {
            "version": VERSION,
            "number": hex(self.number),
            "blockHash": _hex(self.block_hash),
            "headerRlp": _hex(self.header_rlp),
            "headerSm3": _hex(self.header_sm3),
            "prevSealDigest": _hex(self.prev_seal_digest),
            "sealDigest": _hex(self.seal_digest),
            "signature": _hex(self.signature),
            "validator": self.validator,
        }

    @classmethod
    def from_json(cls, d: Any) -> Seal:
        """Parse the wire form; raises FormatError on a malformed seal."""
        if not isinstance(d, dict):
            raise FormatError("seal must be a JSON object")
        try:
            number = int(d["number"], 16)
            validator = str(d["validator"])
            return cls(
                number=number,
                block_hash=_unhex(d["blockHash"], "blockHash"),
                header_rlp=_unhex(d["headerRlp"], "headerRlp"),
                header_sm3=_unhex(d["headerSm3"], "headerSm3"),
                prev_seal_digest=_unhex(d["prevSealDigest"], "prevSealDigest"),
                seal_digest=_unhex(d["sealDigest"], "sealDigest"),
                signature=_unhex(d["signature"], "signature"),
                validator=validator,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"malformed seal: {exc}") from exc

    def check(self, public_key: SM2PublicKey, prev_seal_digest: bytes) -> str | None:
        """Return None if this seal is internally sound and links to ``prev_seal_digest``, else why not."""
        if self.prev_seal_digest != prev_seal_digest:
            return "SM3 link broken: prevSealDigest is not the previous block's sealDigest"
        if self.header_sm3 != sm3(self.header_rlp):
            return "headerSm3 is not SM3(headerRlp)"
        if self.seal_digest != seal_digest(self.number, self.header_rlp, prev_seal_digest):
            return "sealDigest does not match the header and the previous seal"
        if self.validator != validator_id(public_key):
            return f"sealed by unknown validator {self.validator}"
        try:
            public_key.verify(self.seal_digest, self.signature)
        except Exception:  # SignatureInvalid or malformed DER: either way the seal is bad
            return "SM2 seal signature does not verify"
        return None
