"""国密 precompiles: SM3 at 0x…5001, SM2-verify at 0x…5002 (FISCO's CryptoPrecompiled as the model).

Raw calling convention like Ethereum's own precompiles (0x02 sha256), so Solidity reaches them with
``staticcall`` and no ABI: see ``docs/design/block-seal.md`` § Precompiles. Contracts must not depend on
them: on engines without them a staticcall to these addresses succeeds with empty output.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from eth._utils.numeric import ceil32
from eth.abc import ComputationAPI

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


PRECOMPILES = {SM3_ADDRESS: sm3_precompile, SM2_VERIFY_ADDRESS: sm2_verify_precompile}
