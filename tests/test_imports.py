"""Every module of the product imports: mypy runs with ``ignore_missing_imports`` (third-party stubs), which
would also let an import of a first-party module that a merge removed pass unseen."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ("provenance", "chain_node", "devnet", "adapters", "gateway", "witness")


def _modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        root = importlib.import_module(pkg)
        names += [
            m.name for m in pkgutil.walk_packages(root.__path__, pkg + ".") if not m.name.endswith("__main__")
        ]
    return names


@pytest.mark.parametrize("module", _modules())
def test_module_imports(module: str) -> None:
    importlib.import_module(module)
