"""The `openssl` command line (real subprocesses), as the interoperability tests of this folder call it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DISTID = "distid:1234567812345678"  # GB/T 32918's default ID, as `-pkeyopt` takes it

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=check)


def openssl_verify(
    folder: Path,
    public_key_pem: bytes | str,
    message: bytes,
    signature: bytes,
    *,
    distid: str | None = DISTID,
) -> subprocess.CompletedProcess[str]:
    """`openssl pkeyutl -verify` of the DER ``signature`` over ``message`` (with SM3 and ``distid``; with
    ``distid=None``, ``message`` is a bare digest e, the signature checked as is), files written in
    ``folder``; never raises on a failed check, the caller reads the exit code."""
    pub = folder / "pub.pem"
    pub.write_bytes(public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem)
    (folder / "msg").write_bytes(message)
    (folder / "sig").write_bytes(signature)
    sm3 = ["-rawin", "-digest", "sm3", "-pkeyopt", distid] if distid is not None else []
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", pub, *sm3, "-in", folder / "msg"]
    return openssl(*args, "-sigfile", folder / "sig", check=False)


def openssl_signed(folder: Path, message: bytes) -> tuple[Path, bytes]:
    """A fresh SM2 key made by `openssl genpkey` (its PEM file) and its SM3 signature of ``message`` with the
    default ID, made by `openssl pkeyutl -sign`."""
    key = folder / "key.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", key)
    (folder / "msg").write_bytes(message)
    args = ["pkeyutl", "-sign", "-inkey", key, "-rawin", "-digest", "sm3", "-pkeyopt", DISTID]
    openssl(*args, "-in", folder / "msg", "-out", folder / "sig")
    return key, (folder / "sig").read_bytes()
