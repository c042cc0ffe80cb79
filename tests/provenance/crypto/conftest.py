from __future__ import annotations

import ctypes.util
from pathlib import Path

import pytest


@pytest.fixture
def botan_not_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine whose setup could not build Botan: an empty build cache holding the failure it recorded."""
    from provenance.crypto import _backend, botan_build

    (tmp_path / "failed.txt").write_text("`apt-get update` exited 100: simulated: no network\n")
    monkeypatch.setattr(botan_build, "default_cache", lambda: tmp_path)
    real_find = ctypes.util.find_library
    monkeypatch.setattr(ctypes.util, "find_library", lambda n: None if n == "botan-3" else real_find(n))
    monkeypatch.setattr(_backend, "_instances", {})
    monkeypatch.setattr(_backend, "_default", None)
    return tmp_path
