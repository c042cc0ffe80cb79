"""国密 precompiles: SM3 at 0x…5001, SM2-verify at 0x…5002 (FISCO's CryptoPrecompiled as the model);
Ethereum's modexp (0x…05) with its input lengths bounded.

Raw calling convention like Ethereum's own precompiles (0x02 sha256), so Solidity reaches them with
``staticcall`` and no ABI: see ``docs/design/block-seal.md`` § Precompiles. Contracts must not depend on
them: on engines without them a staticcall to these addresses succeeds with empty output.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from eth._utils.numeric import ceil32
from eth.abc import ComputationAPI
from eth.exceptions import VMError
from eth.precompiles.modexp import extract_lengths
from eth_typing import Address

from provenance.crypto import SM2PublicKey, sm3

SM3_ADDRESS = b"\x00" * 18 + b"\x50\x01"
SM2_VERIFY_ADDRESS = b"\x00" * 18 + b"\x50\x02"

# Priced like sha256 (60 + 12/word) and ecrecover (3000) respectively: the same order of work.
SM3_BASE_GAS = 60
SM3_WORD_GAS = 12
SM2_VERIFY_GAS = 3000
SM2_WORD_GAS = 12

_VALID = (1).to_bytes(32, "big")
_INVALID = bytes(32)


def sm3_precompile(computation: ComputationAPI) -> ComputationAPI:
    """Input: any bytes. Output: their 32-byte SM3 digest."""
    data = computation.msg.data_as_bytes
    computation.consume_gas(SM3_BASE_GAS + SM3_WORD_GAS * (ceil32(len(data)) // 32), reason="SM3 precompile")
    computation.output = sm3(data)
    return computation


def sm2_verify_precompile(computation: ComputationAPI) -> ComputationAPI:
    """Input: pubkey x‖y (64) ‖ r (32) ‖ s (32) ‖ message. Output: uint256 1 if valid, else 0.

    The message is signed as GB/T 32918 with the default ID (Z computed from the key), like every SM2
    signature in this project. Malformed input yields 0 rather than an exception, as ecrecover does.
    """
    data = computation.msg.data_as_bytes
    extra = max(0, len(data) - 128)
    computation.consume_gas(SM2_VERIFY_GAS + SM2_WORD_GAS * (ceil32(extra) // 32), reason="SM2 precompile")
    if len(data) < 128:
        computation.output = _INVALID
        return computation
    try:
        pub = SM2PublicKey.from_raw(data[:64])
        der = encode_dss_signature(int.from_bytes(data[64:96], "big"), int.from_bytes(data[96:128], "big"))
        pub.verify(data[128:], der)
    except Exception:  # any invalid key or signature is simply "not valid"
        computation.output = _INVALID
    else:
        computation.output = _VALID
    return computation


MODEXP_ADDRESS = Address(b"\x00" * 19 + b"\x05")
# The longest base, exponent or modulus modexp takes, in bytes (4,096-bit numbers, RSA-4096). Its ``pow``
# is one C call that holds the GIL until it returns, and no deadline can stop it: at 512 bytes with a
# 4,096-bit exponent it runs ~0.15-0.3 s here, at 1,024 bytes (EIP-7823's bound) ~1.6 s, and 22 M gas of
# it stalled every request 0.35 s. Longer inputs fail the call (all its gas), as EIP-7823 does past 1,024.
MODEXP_MAX_BYTES = 512


class ModexpInputTooLong(VMError):
    """A modexp length over MODEXP_MAX_BYTES: an exceptional halt, burning the call's gas."""


def bounded_modexp(
    modexp: Callable[[ComputationAPI], ComputationAPI],
) -> Callable[[ComputationAPI], ComputationAPI]:
    """py-evm's modexp (EIP-2565 pricing), refusing inputs longer than MODEXP_MAX_BYTES before any work."""

    def precompile(computation: ComputationAPI) -> ComputationAPI:
        lengths = extract_lengths(computation.msg.data_as_bytes)
        if max(lengths) > MODEXP_MAX_BYTES:
            raise ModexpInputTooLong(f"modexp input lengths {lengths}: each at most {MODEXP_MAX_BYTES} bytes")
        return modexp(computation)

    return precompile


PRECOMPILES = {SM3_ADDRESS: sm3_precompile, SM2_VERIFY_ADDRESS: sm2_verify_precompile}
