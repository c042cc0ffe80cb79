"""SM2 through OpenSSL 3's libcrypto (EVP API) via ctypes: the fast backend.

One EVP_PKEY per key object, parsed once; every call builds its own EVP_PKEY_CTX/EVP_MD_CTX (cheap, and
what makes concurrent use from several threads safe) and frees them before returning.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager
from ctypes import POINTER, byref, c_char_p, c_int, c_long, c_size_t, c_ulong, c_void_p
from typing import Any, Literal

from provenance.crypto import _der
from provenance.crypto._backend import binder
from provenance.errors import BackendUnavailable, CryptoError, KeyInvalid

_MIN_VERSION = 0x30000000


def _load_libcrypto() -> ctypes.CDLL:
    names = ["libcrypto.so.3", "libcrypto.3.dylib"]
    found = ctypes.util.find_library("crypto")
    if found:
        names.append(found)
    for n in names:
        try:
            lib = ctypes.CDLL(n)
        except OSError:
            continue
        lib.OpenSSL_version_num.restype = c_ulong
        lib.OpenSSL_version_num.argtypes = []
        if lib.OpenSSL_version_num() >= _MIN_VERSION:
            return lib
    raise BackendUnavailable("OpenSSL 3 libcrypto not found")


def _bind(lib: ctypes.CDLL) -> None:
    f = binder(lib, "libcrypto")
    pp = POINTER(c_char_p)
    f("OpenSSL_version", c_char_p, c_int)
    f("ERR_clear_error", None)
    f("ERR_get_error", c_ulong)
    f("ERR_error_string_n", None, c_ulong, c_char_p, c_size_t)
    f("EVP_MD_fetch", c_void_p, c_void_p, c_char_p, c_char_p)
    f("EVP_MD_free", None, c_void_p)
    f("EVP_PKEY_CTX_new_from_name", c_void_p, c_void_p, c_char_p, c_char_p)
    f("EVP_PKEY_CTX_new", c_void_p, c_void_p, c_void_p)
    f("EVP_PKEY_CTX_free", None, c_void_p)
    f("EVP_PKEY_CTX_set1_id", c_int, c_void_p, c_char_p, c_int)
    f("EVP_PKEY_keygen_init", c_int, c_void_p)
    f("EVP_PKEY_generate", c_int, c_void_p, POINTER(c_void_p))
    f("EVP_PKEY_free", None, c_void_p)
    f("EVP_PKEY_is_a", c_int, c_void_p, c_char_p)
    f("d2i_AutoPrivateKey", c_void_p, c_void_p, pp, c_long)
    f("d2i_PUBKEY", c_void_p, c_void_p, pp, c_long)
    f("i2d_PrivateKey", c_int, c_void_p, pp)
    f("i2d_PUBKEY", c_int, c_void_p, pp)
    f("EVP_MD_CTX_new", c_void_p)
    f("EVP_MD_CTX_free", None, c_void_p)
    f("EVP_MD_CTX_set_pkey_ctx", None, c_void_p, c_void_p)
    f("EVP_DigestSignInit", c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p)
    f("EVP_DigestSign", c_int, c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t)
    f("EVP_DigestVerifyInit", c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p)
    f("EVP_DigestVerify", c_int, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)


class _PKey:
    """Owns one EVP_PKEY*; freed when the key object that holds it is collected."""

    __slots__ = ("_free", "ptr")

    def __init__(self, lib: ctypes.CDLL, ptr: int) -> None:
        self.ptr = ptr
        self._free = lib.EVP_PKEY_free

    def __del__(self) -> None:
        if self.ptr:
            self._free(self.ptr)
            self.ptr = 0


# An SM2 DER signature is at most 72 bytes (two 33-byte INTEGERs plus headers).
_SIG_MAX = 80


class OpenSSLBackend:
    name = "openssl"

    def __init__(self) -> None:
        lib = _load_libcrypto()
        _bind(lib)
        self._lib = lib
        self.detail = (lib.OpenSSL_version(0) or b"OpenSSL").decode("ascii", "replace")
        # Fetched once: an explicit EVP_MD spares the per-call implicit fetch of EVP_sm3().
        md = lib.EVP_MD_fetch(None, b"SM3", None)
        if not md:
            self._clear()
            raise BackendUnavailable("libcrypto has no SM3")
        self._md = md
        try:
            self.generate()
        except CryptoError as e:
            raise BackendUnavailable(f"libcrypto cannot use SM2: {e}") from None

    def __del__(self) -> None:
        md = getattr(self, "_md", None)
        if md:
            self._lib.EVP_MD_free(md)

    def _clear(self) -> str:
        """Drain this thread's OpenSSL error queue (it would otherwise grow) and describe its first entry."""
        lib = self._lib
        code = lib.ERR_get_error()
        msg = ""
        if code:
            buf = ctypes.create_string_buffer(256)
            lib.ERR_error_string_n(code, buf, 256)
            msg = buf.value.decode("ascii", "replace")
        lib.ERR_clear_error()
        return msg

    def _wrap(self, ptr: int | None, what: str) -> _PKey:
        if not ptr:
            raise KeyInvalid(f"OpenSSL rejected the {what}: {self._clear()}")
        key = _PKey(self._lib, ptr)
        if self._lib.EVP_PKEY_is_a(ptr, b"SM2") != 1:
            # OpenSSL 3 types keys on the SM2 curve as SM2; anything else would sign with ECDSA.
            raise KeyInvalid(f"OpenSSL did not load the {what} as an SM2 key")
        return key

    def _i2d(self, fn: Any, pkey: _PKey) -> bytes:
        n = fn(pkey.ptr, None)
        if n <= 0:
            raise CryptoError(f"OpenSSL could not encode a key: {self._clear()}")
        buf = ctypes.create_string_buffer(n)
        p = ctypes.cast(buf, c_char_p)
        if fn(pkey.ptr, byref(p)) != n:
            raise CryptoError(f"OpenSSL could not encode a key: {self._clear()}")
        return buf.raw

    def _public_point(self, pkey: _PKey) -> tuple[int, int]:
        return _der.decode_spki(self._i2d(self._lib.i2d_PUBKEY, pkey))

    def generate(self) -> tuple[object, int, tuple[int, int]]:
        lib = self._lib
        ctx = lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
        if not ctx:
            raise CryptoError(f"OpenSSL has no SM2 key manager: {self._clear()}")
        try:
            out = c_void_p()
            if lib.EVP_PKEY_keygen_init(ctx) != 1 or lib.EVP_PKEY_generate(ctx, byref(out)) != 1:
                raise CryptoError(f"SM2 key generation failed: {self._clear()}")
        finally:
            lib.EVP_PKEY_CTX_free(ctx)
        pkey = self._wrap(out.value, "generated key")
        parts = _der.decode_private_der(self._i2d(lib.i2d_PrivateKey, pkey))
        return pkey, parts.d, self._public_point(pkey)

    def load_private(self, d: int) -> tuple[object, tuple[int, int]]:
        # Encoded without the public key so OpenSSL derives it from d (the caller compares any stored one).
        der = _der.encode_pkcs8(d, None)
        p = c_char_p(der)
        pkey = self._wrap(self._lib.d2i_AutoPrivateKey(None, byref(p), len(der)), "private key")
        return pkey, self._public_point(pkey)

    def load_public(self, x: int, y: int) -> object:
        der = _der.encode_spki(x, y)
        p = c_char_p(der)
        return self._wrap(self._lib.d2i_PUBKEY(None, byref(p), len(der)), "public key")

    @contextmanager
    def _digest_ctx(self, pkey: _PKey, id: bytes, op: Literal["sign", "verify"]) -> Iterator[int]:
        """An MD_CTX set up to ``op`` with SM2 under ``id``; it and its PKEY_CTX are freed on exit."""
        lib = self._lib
        pctx = lib.EVP_PKEY_CTX_new(pkey.ptr, None)
        mctx = lib.EVP_MD_CTX_new()
        try:
            if not pctx or not mctx:
                raise CryptoError(f"OpenSSL out of memory: {self._clear()}")
            if lib.EVP_PKEY_CTX_set1_id(pctx, id, len(id)) != 1:
                raise CryptoError(f"could not set the SM2 ID: {self._clear()}")
            # The MD_CTX does not take ownership of a context given this way: both are freed below.
            lib.EVP_MD_CTX_set_pkey_ctx(mctx, pctx)
            init = lib.EVP_DigestSignInit if op == "sign" else lib.EVP_DigestVerifyInit
            if init(mctx, None, self._md, None, pkey.ptr) != 1:
                raise CryptoError(f"SM2 {op} init failed: {self._clear()}")
            yield mctx
        finally:
            lib.EVP_MD_CTX_free(mctx)
            lib.EVP_PKEY_CTX_free(pctx)

    def sign(self, handle: object, message: bytes, id: bytes) -> bytes:
        assert isinstance(handle, _PKey)
        with self._digest_ctx(handle, id, "sign") as mctx:
            buf = ctypes.create_string_buffer(_SIG_MAX)
            n = c_size_t(_SIG_MAX)
            if self._lib.EVP_DigestSign(mctx, buf, byref(n), message, len(message)) != 1:
                raise CryptoError(f"SM2 signing failed: {self._clear()}")
            return buf.raw[: n.value]

    def verify(self, handle: object, message: bytes, r: int, s: int, der: bytes, id: bytes) -> bool:
        assert isinstance(handle, _PKey)
        with self._digest_ctx(handle, id, "verify") as mctx:
            rc = self._lib.EVP_DigestVerify(mctx, der, len(der), message, len(message))
            if rc != 1:
                self._clear()
            return bool(rc == 1)
