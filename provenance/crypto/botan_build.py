"""Build the Botan 3 library the SM2 backend uses, from Debian's own source package, once, into a cache.

    python3 provenance/crypto/botan_build.py            # `make setup` runs this; a no-op once built
    python3 provenance/crypto/botan_build.py --refresh  # look for a newer Debian version and rebuild

Bookworm ships only Botan 2, so the source comes from Debian's current stable (``SUITE``) through a private
apt configuration under the cache: the machine's own mirror (read from its apt sources), a ``deb-src`` line
signed by ``debian-archive-keyring``, and apt's own lists and download folders, so the system's apt state is
never touched. apt checks every file it downloads against the InRelease-signed Sources index, and
``dpkg-source -x`` checks the tarballs against the ``.dsc``'s checksums before it unpacks anything.

The build is minimized to what SM2 signatures need and yields one shared library, cached as
``.build/botan/<debian version>/lib/`` with ``current`` naming the version in use. A failure (no network, no
compiler) is recorded in ``failed.txt`` and reported; it never fails setup: the SM2 backend then falls back to
OpenSSL and says so once. Standard library only: this runs before (and without) the project's venv.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

SUITE = "trixie"  # Debian's current stable: the first with Botan 3 (package botan3)
SOURCE_PACKAGE = "botan3"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# Module names as Botan 3.7's configure.py spells them; the rest (asn1, bigint, ec_group, pem, ...) are
# pulled in as dependencies.
MODULES = "sm2,sm3,pcurves_sm2p256v1,ffi,system_rng,auto_rng,hmac_drbg,sha2_32,sha2_64"
CONFIGURE = (
    "--minimized-build",
    f"--enable-modules={MODULES}",
    "--disable-static-library",
    "--build-targets=shared",
    "--without-documentation",
)
LIB_GLOB = "libbotan-3.so*"
TOOLS = ("apt-get", "dpkg-source", "make", "c++")


def default_cache() -> Path:
    """``.build/botan`` at the top of the checkout this file is in (git-ignored)."""
    return Path(__file__).resolve().parents[2] / ".build" / "botan"


class BuildFailed(Exception):
    """Why the library could not be had; recorded in ``failed.txt`` and shown once at run time."""


# --- the cache --------------------------------------------------------------------------------------


def cached_library(cache: Path) -> Path | None:
    """The built library named by ``current`` (None when there is none, or its build record is stale)."""
    try:
        version = (cache / "current").read_text().strip()
        info = json.loads((cache / version / "build.json").read_text())
    except (OSError, ValueError):
        return None
    name = str(info.get("library", ""))
    lib = cache / version / "lib" / name
    if info.get("configure") != list(CONFIGURE) or Path(name).name != name or not lib.is_file():
        return None
    return lib


def failure_reason(cache: Path) -> str | None:
    try:
        return (cache / "failed.txt").read_text().strip() or None
    except OSError:
        return None


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    # Two `make setup` runs in one checkout must not build into the same folder at once.
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# --- fetching the source ----------------------------------------------------------------------------


def _run(what: str, cmd: Sequence[str | Path], *, cwd: Path | None = None, log: Path | None = None) -> str:
    """Run ``cmd`` (``what`` names it in errors); output goes to ``log`` when given. Failure: BuildFailed."""
    try:
        res = subprocess.run(  # noqa: S603 - fixed argv of system tools, no shell
            [str(c) for c in cmd],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError as e:
        raise BuildFailed(f"{what}: {e}") from None
    if log is not None:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(map(str, cmd))}\n{res.stdout}{res.stderr}\n")
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise BuildFailed(f"`{what}` exited {res.returncode}: {' | '.join(tail)}")
    return res.stdout


def _debian_mirror() -> str:
    """The URI this machine's apt uses for the Debian archive (the one carrying its own release)."""
    codename = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                codename = line.split("=", 1)[1].strip().strip('"')
    out = _run(
        "apt-get indextargets",
        ["apt-get", "indextargets", "--no-release-info", "--format", "$(RELEASE) $(REPO_URI)"],
    )
    for line in out.splitlines():
        release, _, uri = line.partition(" ")
        if release == codename and uri:
            return uri
    raise BuildFailed(f"no Debian archive for {codename or 'this release'} among apt's sources")


class _Apt:
    """apt-get and apt-cache confined to a folder of their own: a deb-src line for ``SUITE`` only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for d in ("lists/partial", "cache/archives/partial", "parts"):
            (root / d).mkdir(parents=True, exist_ok=True)
        if not KEYRING.is_file():
            raise BuildFailed(f"{KEYRING} missing (package debian-archive-keyring)")
        (root / "sources.list").write_text(f"deb-src [signed-by={KEYRING}] {_debian_mirror()} {SUITE} main\n")
        self.opts = [
            f"-oDir::Etc::SourceList={root / 'sources.list'}",
            f"-oDir::Etc::SourceParts={root / 'parts'}",
            f"-oDir::State::Lists={root / 'lists'}",
            f"-oDir::Cache={root / 'cache'}",
            "-oAcquire::Languages=none",
            "-oAPT::Get::List-Cleanup=false",
        ]
        if os.geteuid() == 0:
            # apt's _apt user cannot write into a root-owned checkout; said once here instead of per file.
            self.opts.append("-oAPT::Sandbox::User=root")

    def update(self, log: Path) -> None:
        _run("apt-get update", ["apt-get", *self.opts, "-qq", "update"], log=log)

    def download_source(self, dest: Path, log: Path) -> Path:
        """The source package's files into ``dest`` (each checked by apt against the signed index)."""
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.iterdir():
            old.unlink()
        cmd = ["apt-get", *self.opts, "-qq", "source", "--download-only", SOURCE_PACKAGE]
        _run("apt-get source", cmd, cwd=dest, log=log)
        dscs = sorted(dest.glob("*.dsc"))
        if len(dscs) != 1:
            raise BuildFailed(f"apt-get source left {len(dscs)} .dsc files in {dest}")
        return dscs[0]


def dsc_version(dsc: Path) -> str:
    m = re.search(r"^Version:\s*(\S+)\s*$", dsc.read_text(errors="replace"), re.MULTILINE)
    if not m or not re.fullmatch(r"[0-9A-Za-z.+~:-]+", m.group(1)):
        raise BuildFailed(f"{dsc.name} has no usable Version field")
    return m.group(1)


def unpack(dsc: Path, dest: Path, log: Path) -> None:
    """``dpkg-source -x``: refuses, before unpacking, a file whose size or checksum differs from the .dsc."""
    _run("dpkg-source -x", ["dpkg-source", "--no-copy", "-x", dsc, dest], cwd=dsc.parent, log=log)


# --- building ---------------------------------------------------------------------------------------


def _compile(src: Path, version: str, log: Path) -> Path:
    # The distribution info shows in botan_version_string(), so `provenance --version` names the source.
    info = f"--distribution-info=Debian {SOURCE_PACKAGE} {version}"
    _run("configure.py", [sys.executable, "configure.py", *CONFIGURE, info], cwd=src, log=log)
    _run("make libs", ["make", f"-j{os.cpu_count() or 1}", "libs"], cwd=src, log=log)
    built = sorted(p for p in src.glob(LIB_GLOB) if p.is_file() and not p.is_symlink())
    if not built:
        raise BuildFailed(f"the build produced no {LIB_GLOB}")
    return built[-1]


def build(cache: Path) -> Path:
    """Fetch, verify, build and cache; returns the library. Raises BuildFailed."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise BuildFailed(f"missing build tools: {', '.join(missing)}")
    log = cache / "build.log"
    log.write_text("")
    apt = _Apt(cache / "apt")
    try:
        apt.update(log)
        dsc = apt.download_source(cache / "source", log)
    finally:
        shutil.rmtree(apt.root / "lists", ignore_errors=True)  # 20 MB of index, needed once
    version = dsc_version(dsc)
    out = cache / version
    if cached_library(cache) is None or (cache / "current").read_text().strip() != version:
        with tempfile.TemporaryDirectory(dir=cache, prefix="tree.") as tmp:
            tree = Path(tmp) / "botan"
            unpack(dsc, tree, log)
            t0 = time.monotonic()
            lib = _compile(tree, version, log)
            seconds = time.monotonic() - t0
            shutil.rmtree(out, ignore_errors=True)
            (out / "lib").mkdir(parents=True)
            shutil.copy2(lib, out / "lib" / lib.name)
        info = {
            "source": SOURCE_PACKAGE,
            "suite": SUITE,
            "version": version,
            "dsc_sha256": hashlib.sha256(dsc.read_bytes()).hexdigest(),
            "configure": list(CONFIGURE),
            "library": lib.name,
            "library_sha256": hashlib.sha256((out / "lib" / lib.name).read_bytes()).hexdigest(),
            "build_seconds": round(seconds),
        }
        (out / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        shutil.copy2(log, out / "build.log")
    (cache / "current").write_text(version + "\n")
    (cache / "failed.txt").unlink(missing_ok=True)
    found = cached_library(cache)
    assert found is not None
    return found


def ensure(cache: Path, *, refresh: bool = False) -> Path | None:
    """The cached library, building it first if there is none (or ``refresh``). None when that failed."""
    with _locked(cache):
        lib = None if refresh else cached_library(cache)
        if lib is not None:
            print(f"botan: cached {lib.relative_to(cache.parent)}")
            return lib
        print(
            f"botan: fetching {SOURCE_PACKAGE} from Debian {SUITE}; a new version builds in ~3 min (2 cores)"
        )
        try:
            lib = build(cache)
        except BuildFailed as e:
            (cache / "failed.txt").write_text(f"{e}\n")
            print(
                f"botan: WARNING: could not build Botan 3 ({e}); SM2 will run on OpenSSL. "
                f"Log: {cache / 'build.log'}; retry: python3 {Path(__file__).name} --refresh",
                file=sys.stderr,
            )
            return None
        print(f"botan: ready {lib.relative_to(cache.parent)}")
        return lib


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--cache", type=Path, default=default_cache(), help="cache folder (default: %(default)s)")
    p.add_argument("--refresh", action="store_true", help="fetch the current source version and rebuild")
    args = p.parse_args(argv)
    ensure(args.cache, refresh=args.refresh)
    return 0  # a failed build is reported, never fatal: the SM2 backend falls back to OpenSSL


if __name__ == "__main__":
    raise SystemExit(main())
