"""国密 crypto: SM2 signatures (Botan 3, else OpenSSL 3's libcrypto, else gmssl), SM3 digests, SM4-GCM."""

from provenance.crypto._backend import available_backends, backend_report, get_backend, set_default_backend
from provenance.crypto.sm2 import DEFAULT_ID, SM2PrivateKey, SM2PublicKey
from provenance.crypto.sm3 import SM3Hasher, hmac_sm3, sm3, sm3_hex
from provenance.crypto.sm4 import DecryptionFailed, generate_sm4_key, sm4_gcm_decrypt, sm4_gcm_encrypt

__all__ = [
    "DEFAULT_ID",
    "DecryptionFailed",
    "SM2PrivateKey",
    "SM2PublicKey",
    "SM3Hasher",
    "available_backends",
    "backend_report",
    "generate_sm4_key",
    "get_backend",
    "hmac_sm3",
    "set_default_backend",
    "sm3",
    "sm3_hex",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]
