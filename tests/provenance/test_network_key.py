"""The network key and the boxes' keyed digests on chain (provenance.network_key, trace_code.chain_digest)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from provenance.files import FileUnreadable, write_private
from provenance.network_key import (
    NetworkKeyInvalid,
    check_key,
    create_network_key,
    key_id,
    read_network_key,
)
from provenance.trace_code import CHAIN_DIGEST_LABEL, chain_digest, digest, identity, normalise

GS1 = "(01)06901234567892(17)281105(10)B7(21)SN0042"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_a_boxs_chain_digest_is_hmac_sm3_of_its_identity_as_openssl_computes_it() -> None:
    key = bytes(range(32))
    normal = normalise(GS1)[1]
    message = CHAIN_DIGEST_LABEL + b"trace-code\0" + identity(normal).encode("ascii")
    out = subprocess.run(
        ["openssl", "mac", "-digest", "SM3", "-macopt", f"hexkey:{key.hex()}", "HMAC"],
        input=message,
        capture_output=True,
        check=True,
    )
    assert chain_digest(key, normal) == out.stdout.decode().strip().lower()
    # One box, one digest, whatever else is printed (expiry, batch); another key, another digest; and
    # never the SM3 anyone holding the box computes.
    assert chain_digest(key, normalise("(01)06901234567892(21)SN0042")[1]) == chain_digest(key, normal)
    assert chain_digest(bytes(32), normal) != chain_digest(key, normal)
    assert chain_digest(key, normal) != digest(normal)


def test_the_key_file_is_64_hex_digits_owner_only_and_its_id_names_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "network.key"
    key = create_network_key(path)
    assert (path.stat().st_mode & 0o777) == 0o600 and path.read_text("ascii") == key.hex() + "\n"
    assert read_network_key(path) == key
    with pytest.raises(FileUnreadable, match="refusing to overwrite"):
        create_network_key(path)
    check_key(key, key_id(key), path)
    check_key(key, "", path)  # a manifest from before network keys names none
    with pytest.raises(NetworkKeyInvalid, match=f"holds the key {key_id(key)}, the network's is 0011"):
        check_key(key, "0011223344556677", path)
    cases = {
        "short": (b"00ff\n", 0o600, "64 hex digits"),
        "not hex": (b"g" * 64, 0o600, "64 hex digits"),
        "open": (key.hex().encode(), 0o644, "chmod 600"),
    }
    for name, (data, mode, why) in cases.items():
        bad = tmp_path / name
        write_private(bad, data)
        bad.chmod(mode)
        with pytest.raises(NetworkKeyInvalid, match=why) as info:
            read_network_key(bad)
        assert info.value.code == "NETWORK_KEY_INVALID" and key.hex() not in info.value.message
    with pytest.raises(FileUnreadable, match="network key file not found"):
        read_network_key(tmp_path / "missing")
