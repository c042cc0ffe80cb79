"""The network key: one 256-bit secret shared by every gateway of a network (and handed to its auditors and
regulators), under which the chain keys what a public chain reader could otherwise test guesses against.

A box's traceability code is printed on the box: its SM3 on chain would tell anyone holding the box which
pharmacy's account dispensed it, and when (the node's JSON-RPC is public). ``Prescriptions`` therefore
stores ``HMAC-SM3(network key, …)`` of each box's identity (:func:`provenance.trace_code.chain_digest`):
equal codes still give equal digests, so the contract still refuses a box twice network-wide, while a
reader without the key cannot find a box's dispense (docs/design/rx-chain.md, "Boxes on chain").

File: the key as 64 hex digits on one line (``openssl rand -hex 32``), 0600; the devnet writes it to
``keys/network.key`` beside the manifest. It is never in a database, a log line or the manifest.
"""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

from provenance.crypto.sm3 import hmac_sm3
from provenance.errors import FormatError
from provenance.files import read_bytes, write_private

NETWORK_KEY_NAME = "network.key"
KEY_SIZE = 32
KEY_ID_LABEL = b"shancheng-provenance/network-key-id@v1"


class NetworkKeyInvalid(FormatError):
    """A network key file that does not hold a 256-bit key as 64 hex digits."""

    code = "NETWORK_KEY_INVALID"


def key_id(key: bytes) -> str:
    """The key's public name, ``HMAC-SM3(key, KEY_ID_LABEL)``'s first 8 bytes as hex: the manifest carries it
    so that a gateway started with another network's key (or a fresh one) refuses to start instead of
    keying boxes other gateways cannot find (the contract would then take a box twice)."""
    return hmac_sm3(key, KEY_ID_LABEL)[:8].hex()


def check_key(key: bytes, expected: str, path: Path) -> None:
    """NETWORK_KEY_INVALID unless ``key`` has the id ``expected`` (the manifest's; empty: no check)."""
    if expected and key_id(key) != expected:
        raise NetworkKeyInvalid(
            f"the network key file {path} holds the key {key_id(key)}, the network's is {expected}: every "
            "gateway of a network is started with the same network key file (a copy of the devnet's "
            "keys/network.key)",
            details={"file": str(path), "key_id": key_id(key), "network_key_id": expected},
        )


def default_path(manifest_path: Path) -> Path:
    """Where the devnet keeps the network key: ``keys/network.key`` beside the manifest."""
    return manifest_path.parent / "keys" / NETWORK_KEY_NAME


def create_network_key(path: Path) -> bytes:
    """A fresh network key written to ``path`` (0600; an existing file is never overwritten)."""
    key = secrets.token_bytes(KEY_SIZE)
    write_private(path, (key.hex() + "\n").encode("ascii"))
    return key


def read_network_key(path: Path) -> bytes:
    """The network key in ``path``: FileUnreadable when missing, NETWORK_KEY_INVALID when not 64 hex digits
    or readable by others (the file's content stays out of every message)."""
    data = read_bytes(path, what="network key file")
    text = data.strip()
    key = None
    if len(text) == 2 * KEY_SIZE:
        try:
            key = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            key = None
    if key is None:
        raise NetworkKeyInvalid(
            f"the network key file {path} does not hold a 256-bit key as 64 hex digits ({len(data)} bytes "
            "read): every gateway of the network needs the same one (`openssl rand -hex 32`, once a network)",
            details={"file": str(path)},
        )
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise NetworkKeyInvalid(
            f"the network key file {path} may be read by others: chmod 600 (it is the network's secret)",
            details={"file": str(path)},
        )
    return key
