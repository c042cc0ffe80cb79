"""SM2 through Botan 3's FFI via ctypes: the fastest backend (built by ``botan_build.py`` at setup).

Botan's sign and verify operation objects hold the SM3 state primed with Z (and, for verify, the key's
precomputed multiplication table), which is what makes them fast, and they are not thread-safe. So each key
keeps one operation object of each kind per thread (``threading.local``), made on first use in that thread
and freed when the thread or the key goes. ctypes releases the GIL around every call, so threads sign and
verify in parallel.

The default ID goes to Botan as ``"1234567812345678,SM3"``. Botan takes the ID inside that C string, so any
other ID (it may hold commas or NUL bytes) is signed in Botan's ``Raw`` mode over e = SM3(Z(id) || M)
computed here, with a one-off operation object. Signatures are DER both ways
(``BOTAN_PUBKEY_DER_FORMAT_SIGNATURE``); nonces come from Botan's system RNG (the OS's getrandom).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint32, c_void_p
from pathlib import Path
from typing import Any

from provenance.crypto import _curve, botan_build
from provenance.crypto._backend import binder
from provenance.errors import BackendUnavailable, CryptoError, KeyInvalid

CURVE = b"sm2p256v1"
_DER_SIGNATURE = 1  # BOTAN_PUBKEY_DER_FORMAT_SIGNATURE
_INVALID_VERIFIER = 1  # BOTAN_FFI_INVALID_VERIFIER: a well-formed "no"
_DEFAULT_PARAMS = _curve.DEFAULT_ID + b",SM3"
_RAW_PARAMS = b",Raw"  # Botan's SM2 takes e itself: the ID is already inside it
_SIG_MAX = 80  # DER SEQUENCE of two 33-byte INTEGERs is at most 72 bytes


def library_candidates(cache: Path | None = None) -> list[str]:
    """Where Botan 3 is looked for: the build cache first, then a system libbotan-3 (Debian 13 has one)."""
    out = []
    lib = botan_build.cached_library(cache or botan_build.default_cache())
    if lib is not None:
        out.append(str(lib))
    found = ctypes.util.find_library("botan-3")
    if found:
        out.append(found)
    return out


def _load(cache: Path | None = None) -> tuple[ctypes.CDLL, str]:
    errors = []
    for path in library_candidates(cache):
        try:
            lib = ctypes.CDLL(path)
            lib.botan_version_major.restype = c_uint32
            if lib.botan_version_major() == 3:
                return lib, path
            errors.append(f"{path} is not Botan 3")
        except (OSError, AttributeError) as e:
            errors.append(f"{path}: {e}")
    if errors:
        raise BackendUnavailable("Botan 3 did not load: " + "; ".join(errors))
    why = botan_build.failure_reason(cache or botan_build.default_cache())
    if why:
        raise BackendUnavailable(f"Botan 3 was not built at setup: {why}")
    raise BackendUnavailable("Botan 3 is not built here (make setup builds it)")


def _bind(lib: ctypes.CDLL) -> None:
    f = binder(lib, "Botan")
    vp, pvp, u8p, szp = c_void_p, POINTER(c_void_p), c_char_p, POINTER(c_size_t)
    f("botan_version_string", c_char_p)
    f("botan_error_description", c_char_p, c_int)
    f("botan_error_last_exception_message", c_char_p)
    f("botan_rng_init", c_int, pvp, c_char_p)
    f("botan_rng_destroy", c_int, vp)
    f("botan_mp_init", c_int, pvp)
    f("botan_mp_destroy", c_int, vp)
    f("botan_mp_from_bin", c_int, vp, u8p, c_size_t)
    f("botan_mp_to_bin", c_int, vp, u8p)
    f("botan_mp_num_bytes", c_int, vp, szp)
    f("botan_privkey_create", c_int, pvp, c_char_p, c_char_p, vp)
    f("botan_privkey_load_sm2", c_int, pvp, vp, c_char_p)
    f("botan_privkey_get_field", c_int, vp, vp, c_char_p)
    f("botan_privkey_destroy", c_int, vp)
    f("botan_pubkey_load_sm2", c_int, pvp, vp, vp, c_char_p)
    f("botan_pubkey_destroy", c_int, vp)
    f("botan_pk_op_sign_create", c_int, pvp, vp, c_char_p, c_uint32)
    f("botan_pk_op_sign_update", c_int, vp, u8p, c_size_t)
    f("botan_pk_op_sign_finish", c_int, vp, vp, u8p, szp)
    f("botan_pk_op_sign_destroy", c_int, vp)
    f("botan_pk_op_verify_create", c_int, pvp, vp, c_char_p, c_uint32)
    f("botan_pk_op_verify_update", c_int, vp, u8p, c_size_t)
    f("botan_pk_op_verify_finish", c_int, vp, u8p, c_size_t)
    f("botan_pk_op_verify_destroy", c_int, vp)


class _Obj:
    """Owns one Botan FFI object; destroyed when collected. ``keep`` holds what it must not outlive."""

    __slots__ = ("_destroy", "keep", "ptr")

    def __init__(self, ptr: int | None, destroy: Any, keep: object = None) -> None:
        self.ptr: int | None = ptr
        self._destroy = destroy
        self.keep = keep

    def __del__(self) -> None:
        if self.ptr:
            self._destroy(self.ptr)
            self.ptr = None


class _Key:
    """A key object, its public point, and its per-thread operation objects (``ops.sign``/``ops.verify``)."""

    __slots__ = ("key", "ops", "point", "private")

    def __init__(self, key: _Obj, point: tuple[int, int], *, private: bool) -> None:
        self.key = key
        self.point = point
        self.private = private
        self.ops = threading.local()


class BotanBackend:
    name = "botan"

    def __init__(self, cache: Path | None = None) -> None:
        lib, path = _load(cache)
        _bind(lib)
        self._lib = lib
        version = (lib.botan_version_string() or b"Botan 3").decode("ascii", "replace")
        self.detail = f"{version}, {path}"
        self._tls = threading.local()  # one system RNG object per thread
        try:
            handle, _, _ = self.generate()
            sig = self.sign(handle, b"probe", _curve.DEFAULT_ID)
            assert isinstance(handle, _Key)
            pub = self.load_public(*handle.point)
            if not self.verify(pub, b"probe", 0, 0, sig, _curve.DEFAULT_ID):
                raise CryptoError("its own signature did not verify")
        except CryptoError as e:
            raise BackendUnavailable(f"Botan at {path} cannot use SM2: {e}") from None

    # --- plumbing -------------------------------------------------------------------------------------

    def _check(self, rc: int, what: str, exc: type[CryptoError] = CryptoError) -> None:
        if rc != 0:
            detail = (self._lib.botan_error_last_exception_message() or b"").decode("utf-8", "replace")
            desc = (self._lib.botan_error_description(rc) or b"").decode("ascii", "replace")
            raise exc(f"Botan {what} failed ({rc}: {desc}{'; ' + detail if detail else ''})")

    def _rng(self) -> int | None:
        rng: _Obj | None = getattr(self._tls, "rng", None)
        if rng is None:
            p = c_void_p()
            self._check(self._lib.botan_rng_init(byref(p), b"system"), "RNG init")
            rng = self._tls.rng = _Obj(p.value, self._lib.botan_rng_destroy)
        return rng.ptr

    def _mp(self, value: int) -> _Obj:
        p = c_void_p()
        self._check(self._lib.botan_mp_init(byref(p)), "mp init")
        mp = _Obj(p.value, self._lib.botan_mp_destroy)
        raw = _curve.int_to_bytes(value)
        self._check(self._lib.botan_mp_from_bin(mp.ptr, raw, len(raw)), "mp from bytes")
        return mp

    def _field(self, key: int, field: bytes) -> int:
        lib = self._lib
        p = c_void_p()
        self._check(lib.botan_mp_init(byref(p)), "mp init")
        mp = _Obj(p.value, lib.botan_mp_destroy)
        self._check(lib.botan_privkey_get_field(mp.ptr, key, field), f"reading {field.decode()}")
        n = c_size_t()
        self._check(lib.botan_mp_num_bytes(mp.ptr, byref(n)), "mp size")
        buf = ctypes.create_string_buffer(max(n.value, 1))
        self._check(lib.botan_mp_to_bin(mp.ptr, buf), "mp to bytes")
        return int.from_bytes(buf.raw[: n.value], "big")

    def _private(self, ptr: int | None) -> _Key:
        key = _Obj(ptr, self._lib.botan_privkey_destroy)
        point = self._field(int(ptr or 0), b"public_x"), self._field(int(ptr or 0), b"public_y")
        return _Key(key, point, private=True)

    # --- the backend interface ------------------------------------------------------------------------

    def generate(self) -> tuple[object, int, tuple[int, int]]:
        while True:
            p = c_void_p()
            self._check(self._lib.botan_privkey_create(byref(p), b"SM2", CURVE, self._rng()), "SM2 keygen")
            k = self._private(p.value)
            d = self._field(int(p.value or 0), b"x")
            # Botan draws d in [1, n-1]; SM2 needs [1, n-2] (1 + d invertible). Never seen: 2**-256.
            if d <= _curve.N - 2:
                return k, d, k.point

    def load_private(self, d: int) -> tuple[object, tuple[int, int]]:
        p = c_void_p()
        mp = self._mp(d)
        self._check(
            self._lib.botan_privkey_load_sm2(byref(p), mp.ptr, CURVE), "SM2 private key load", KeyInvalid
        )
        k = self._private(p.value)
        return k, k.point

    def load_public(self, x: int, y: int) -> object:
        p = c_void_p()
        mx, my = self._mp(x), self._mp(y)
        rc = self._lib.botan_pubkey_load_sm2(byref(p), mx.ptr, my.ptr, CURVE)
        self._check(rc, "SM2 public key load", KeyInvalid)
        return _Key(_Obj(p.value, self._lib.botan_pubkey_destroy), (x, y), private=False)

    def _sign_op(self, key: _Key, params: bytes) -> _Obj:
        p = c_void_p()
        self._check(
            self._lib.botan_pk_op_sign_create(byref(p), key.key.ptr, params, _DER_SIGNATURE), "sign init"
        )
        return _Obj(p.value, self._lib.botan_pk_op_sign_destroy, key.key)

    def _verify_op(self, key: _Key, params: bytes) -> _Obj:
        p = c_void_p()
        rc = self._lib.botan_pk_op_verify_create(byref(p), key.key.ptr, params, _DER_SIGNATURE)
        self._check(rc, "verify init")
        return _Obj(p.value, self._lib.botan_pk_op_verify_destroy, key.key)

    def _op(self, key: _Key, job: str, message: bytes, id: bytes) -> tuple[_Obj, bytes]:
        """The operation object for ``job`` ("sign" or "verify") and what to feed it: with the default ID,
        this thread's cached one, fed the message (Botan hashes Z itself); else a new Raw one, fed e."""
        make = self._sign_op if job == "sign" else self._verify_op
        if id != _curve.DEFAULT_ID:
            return make(key, _RAW_PARAMS), _curve.message_digest(*key.point, message, id)
        op: _Obj | None = getattr(key.ops, job, None)
        if op is None:
            op = make(key, _DEFAULT_PARAMS)
            setattr(key.ops, job, op)
        return op, message

    @staticmethod
    def _discard(key: _Key, job: str, op: _Obj) -> None:
        """After a failed ``job``: the cached operation's SM3 state may hold half a message: drop it."""
        if op is getattr(key.ops, job, None):
            setattr(key.ops, job, None)

    def sign(self, handle: object, message: bytes, id: bytes) -> bytes:
        assert isinstance(handle, _Key) and handle.private
        lib = self._lib
        op, data = self._op(handle, "sign", message, id)
        buf = ctypes.create_string_buffer(_SIG_MAX)
        n = c_size_t(_SIG_MAX)
        rc = lib.botan_pk_op_sign_update(op.ptr, data, len(data))
        if rc == 0:
            rc = lib.botan_pk_op_sign_finish(op.ptr, self._rng(), buf, byref(n))
        if rc != 0:
            self._discard(handle, "sign", op)
            self._check(rc, "SM2 signing")
        return buf.raw[: n.value]

    def verify(self, handle: object, message: bytes, r: int, s: int, der: bytes, id: bytes) -> bool:
        assert isinstance(handle, _Key)
        lib = self._lib
        op, data = self._op(handle, "verify", message, id)
        rc = lib.botan_pk_op_verify_update(op.ptr, data, len(data))
        if rc == 0:
            rc = lib.botan_pk_op_verify_finish(op.ptr, der, len(der))
        if rc in (0, _INVALID_VERIFIER):
            return bool(rc == 0)
        self._discard(handle, "verify", op)
        self._check(rc, "SM2 verification")
        return False
