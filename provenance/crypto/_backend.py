"""The internal SM2 backend interface and the choice between Botan 3, OpenSSL 3 and gmssl, in that order.

Key objects own canonical values (d, x, y) and the formats; a backend only turns them into a handle it
can sign or verify with, once per key, so the hot path never re-parses anything. The default is the first
backend that loads; passing over Botan (not built here, or its build failed) is logged once, as a warning.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from provenance.errors import BackendUnavailable


def binder(lib: ctypes.CDLL, library: str) -> Callable[..., None]:
    """``f(name, restype, *argtypes)`` declaring the C function ``name`` of ``lib``: a function the loaded
    ``library`` lacks makes the backend unavailable, not a crash at its first call."""

    def f(name: str, restype: Any, *argtypes: Any) -> None:
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise BackendUnavailable(f"{library} lacks {name}") from None
        fn.restype = restype
        fn.argtypes = list(argtypes)

    return f


class SM2Backend(Protocol):
    name: str
    detail: str  # which library and version, for `provenance --version` and the benchmarks

    def generate(self) -> tuple[object, int, tuple[int, int]]:
        """A fresh key pair from a CSPRNG: (signing handle, d, (x, y))."""
        ...

    def load_private(self, d: int) -> tuple[object, tuple[int, int]]:
        """A signing handle for ``d`` and the public point derived from it."""
        ...

    def load_public(self, x: int, y: int) -> object:
        """A verifying handle for a point already checked to be on the curve."""
        ...

    def sign(self, handle: object, message: bytes, id: bytes) -> bytes:
        """DER ``SEQUENCE{r, s}`` over e = SM3(Z(id) || message)."""
        ...

    def verify(self, handle: object, message: bytes, r: int, s: int, der: bytes, id: bytes) -> bool:
        """Whether (r, s) (already range-checked; ``der`` is its strict encoding) is valid."""
        ...


log = logging.getLogger("provenance.crypto")

_lock = threading.Lock()
_default: SM2Backend | None = None
_instances: dict[str, SM2Backend] = {}

BACKENDS = ("botan", "openssl", "gmssl")


def get_backend(name: str | None = None) -> SM2Backend:
    """The named backend, or the default: the first of :data:`BACKENDS` that loads here."""
    global _default
    with _lock:
        if name is None:
            if _default is None:
                _default = _first_available()
            return _default
        return _make(name)


def _first_available() -> SM2Backend:
    # Called with _lock held, once per process (until set_default_backend(None)): so the warning is too.
    skipped: list[str] = []
    for n, b in _each(_make):
        if isinstance(b, BackendUnavailable):
            skipped.append(f"{n}: {b.message}")
            continue
        if skipped:
            log.warning("SM2 runs on %s, not the faster %s", n, "; ".join(skipped))
        return b
    raise BackendUnavailable("no SM2 backend loads here: " + "; ".join(skipped))


def set_default_backend(name: str | None) -> None:
    """Force the default backend (tests, or a deployment that must avoid libcrypto); None re-detects."""
    global _default
    b = get_backend(name) if name is not None else None
    with _lock:
        _default = b


def backend_report() -> str:
    """One line per backend: the default marked, each one's library, and why any is unavailable here."""
    default = get_backend().name
    return "\n".join(
        f"  {n}: unavailable: {b.message}"
        if isinstance(b, BackendUnavailable)
        else f"{'*' if n == default else ' '} {n}: {b.detail}"
        for n, b in _each(get_backend)
    )


def available_backends() -> list[str]:
    return [n for n, b in _each(get_backend) if not isinstance(b, BackendUnavailable)]


def _each(make: Callable[[str], SM2Backend]) -> Iterator[tuple[str, SM2Backend | BackendUnavailable]]:
    """Each of :data:`BACKENDS` in order of preference, as ``make`` loads it, or why it does not load here."""
    for n in BACKENDS:
        try:
            loaded: SM2Backend | BackendUnavailable = make(n)
        except BackendUnavailable as e:
            loaded = e
        yield n, loaded


def _make(name: str) -> SM2Backend:
    # Called with _lock held.
    if name in _instances:
        return _instances[name]
    b: SM2Backend
    if name == "botan":
        from provenance.crypto._botan import BotanBackend

        b = BotanBackend()
    elif name == "openssl":
        from provenance.crypto._openssl import OpenSSLBackend

        b = OpenSSLBackend()
    elif name == "gmssl":
        from provenance.crypto._gmssl import GmsslBackend

        b = GmsslBackend()
    else:
        raise BackendUnavailable(f"unknown SM2 backend {name!r}; choose one of {', '.join(BACKENDS)}")
    _instances[name] = b
    return b
