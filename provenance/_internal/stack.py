"""Stack safety against hostile input: a recursion limit the C stack can hold, and a JSON depth scan.

py_ecc raises Python's recursion limit to 100,000 when imported (eth-account imports it, so web3, the
gateway, devnet and every CLI do) and py-evm to 12,288. CPython 3.11 counts C recursion (the json
decoder, a ``__call__``) against the same limit, at up to ~700 bytes of C stack per level: at those
limits a deep enough input overflows an 8 MiB stack and the process dies with SIGSEGV instead of raising
RecursionError (measured: ``json.loads("[" * 100_000)`` and 12,000 nested ``__call__``).

``provenance/__init__.py`` imports this module first, so every entry point (node, gateway, CLIs) runs it:
it sets :data:`RECURSION_LIMIT` now and again right after py_ecc or py-evm finish importing, whenever that
is. Input is still checked before it is decoded (:func:`provenance.limits.json_depth_exceeds`); the limit
is the backstop.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

# The deepest EVM execution gas allows (50 M, the node's call cap; 30 M per transaction) needs between
# 3,000 and 3,500 (measured: a self-calling contract, the 63/64 rule stops it near depth 540); 6,000 leaves
# room for that and costs at most ~4 MiB of an 8 MiB stack. The EVM's full depth of 1,024 would need ~6,500
# (~8,000 through CREATE), reachable only with ~10^11 gas: the node answers such a call with an error.
RECURSION_LIMIT = 6000

# A thread stack that holds RECURSION_LIMIT levels at ~700 bytes each with room to spare, whatever
# `ulimit -s` says (threads otherwise get its value, or glibc's default when it is unlimited): for the
# threads that run py-evm (the node's miner and call threads), set with threading.stack_size().
THREAD_STACK_BYTES = 16 << 20

# Packages that raise the limit when imported.
_RAISERS = frozenset({"py_ecc", "eth"})


class _ResetAfterImport(MetaPathFinder):
    """Finds the modules in ``_RAISERS`` through the other finders and resets the limit after each runs."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in _RAISERS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Resetting(spec.loader)
                return spec
        return None


class _Resetting(Loader):
    """A loader that runs another and then puts the recursion limit back."""

    def __init__(self, inner: Loader) -> None:
        self._inner = inner

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._inner.exec_module(module)
        finally:
            sys.setrecursionlimit(RECURSION_LIMIT)


def hold_recursion_limit() -> None:
    """Set the safe limit now, and again after any later import of a package that raises it."""
    sys.setrecursionlimit(RECURSION_LIMIT)
    if not any(isinstance(f, _ResetAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _ResetAfterImport())


hold_recursion_limit()
