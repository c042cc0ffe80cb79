"""国密 crypto: SM2 signatures (OpenSSL libcrypto, gmssl fallback), SM3 digests, SM4-GCM encryption."""

from provenance.crypto._backend import available_backends, get_backend, set_default_backend
from provenance.crypto.sm2 import DEFAULT_ID, SM2PrivateKey, SM2PublicKey
from provenance.crypto.sm3 import sm3, sm3_hex

__all__ = [
    "DEFAULT_ID",
    "SM2PrivateKey",
    "SM2PublicKey",
    "available_backends",
    "get_backend",
    "set_default_backend",
    "sm3",
    "sm3_hex",
]
