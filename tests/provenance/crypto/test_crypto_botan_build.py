"""The Botan 3 build at setup: cached once, Debian's checksums enforced, a failure recorded and survived."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provenance.crypto import _botan, botan_build, get_backend
from provenance.errors import BackendUnavailable

SCRIPT = Path(botan_build.__file__)
CACHE = botan_build.default_cache()

built = pytest.mark.skipif(
    botan_build.cached_library(CACHE) is None,
    reason="Botan not built here (test_every_backend_present_here fails)",
)


@built
def test_setup_reuses_the_cached_build_without_fetching() -> None:
    res = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    lib = botan_build.cached_library(CACHE)
    assert lib is not None
    assert res.stdout.strip() == f"botan: cached {lib.relative_to(CACHE.parent)}"
    # Keyed by the Debian source version, with what it was built from and how.
    version = (CACHE / "current").read_text().strip()
    info = json.loads((CACHE / version / "build.json").read_text())
    assert info["version"] == version == botan_build.dsc_version(next((CACHE / "source").glob("*.dsc")))
    assert info["source"] == "botan3" and info["suite"] == botan_build.SUITE
    assert info["configure"] == list(botan_build.CONFIGURE)
    assert "--minimized-build" in info["configure"] and "--build-targets=shared" in info["configure"]
    assert info["library_sha256"] == hashlib.sha256(lib.read_bytes()).hexdigest()
    assert (
        info["dsc_sha256"] == hashlib.sha256(next((CACHE / "source").glob("*.dsc")).read_bytes()).hexdigest()
    )
    # And the backend in use is that library.
    assert get_backend().name == "botan"
    assert str(lib) in get_backend().detail and version in get_backend().detail


@built
def test_a_source_file_that_differs_from_the_dsc_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "source"
    shutil.copytree(CACHE / "source", src)
    dsc = next(src.glob("*.dsc"))
    debian_tar = next(src.glob("*.debian.tar.*"))
    data = bytearray(debian_tar.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit off
    debian_tar.write_bytes(bytes(data))
    log = tmp_path / "log"
    with pytest.raises(botan_build.BuildFailed, match="dpkg-source -x` exited"):
        botan_build.unpack(dsc, tmp_path / "tree", log)
    assert "checksum" in log.read_text().lower()
    assert not (tmp_path / "tree").exists()


def test_a_failed_build_is_recorded_not_fatal_and_named_at_run_time(tmp_path: Path) -> None:
    # A machine without the tools (here: an empty PATH) cannot build; setup still succeeds.
    empty = tmp_path / "bin"
    empty.mkdir()
    cache = tmp_path / "cache"
    res = subprocess.run(
        [sys.executable, SCRIPT, "--cache", cache],
        capture_output=True,
        text=True,
        env={"PATH": str(empty)},
        timeout=60,
    )
    assert res.returncode == 0
    assert (
        "WARNING: could not build Botan 3 (missing build tools: apt-get, dpkg-source, make, c++)"
        in res.stderr
    )
    assert "SM2 will run on OpenSSL" in res.stderr
    assert botan_build.failure_reason(cache) == "missing build tools: apt-get, dpkg-source, make, c++"
    assert botan_build.cached_library(cache) is None
    with pytest.raises(BackendUnavailable, match="not built at setup: missing build tools"):
        _botan.BotanBackend(cache)


def test_a_stale_build_record_is_not_used(tmp_path: Path) -> None:
    lib = tmp_path / "9.9" / "lib" / "libbotan-3.so.7"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"\x7fELF")
    (tmp_path / "current").write_text("9.9\n")
    record = {"configure": [*botan_build.CONFIGURE, "--enable-modules=rsa"], "library": lib.name}
    (tmp_path / "9.9" / "build.json").write_text(json.dumps(record))
    assert botan_build.cached_library(tmp_path) is None  # other flags: rebuilt, not trusted
    record["configure"] = list(botan_build.CONFIGURE)
    (tmp_path / "9.9" / "build.json").write_text(json.dumps(record))
    assert botan_build.cached_library(tmp_path) == lib
    # A file that is not a loadable Botan is refused with the reason, not loaded.
    with pytest.raises(BackendUnavailable, match="Botan 3 did not load"):
        _botan.BotanBackend(tmp_path)


@built
def test_version_names_the_backend_in_use() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "provenance", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = res.stdout.splitlines()
    assert lines[0].startswith("provenance ")
    version = (CACHE / "current").read_text().strip()
    assert [ln[:9] for ln in lines[2:]] == ["* botan: ", "  openssl", "  gmssl: "]
    assert f"distribution Debian botan3 {version}" in lines[2] and lines[2].startswith("* botan: Botan 3.")
    assert "OpenSSL 3." in lines[3]
    assert "SM2 runs on" not in res.stderr  # no fallback, so no warning


def test_version_says_why_botan_is_not_in_use(
    botan_not_built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provenance.cli import main

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert "  botan: unavailable: Botan 3 was not built at setup: `apt-get update` exited 100" in out
    assert "* openssl: OpenSSL 3." in out
