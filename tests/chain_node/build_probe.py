"""Rebuild tests/assets/NodeProbe.json from NodeProbe.sol with the project's pinned solc settings."""

from __future__ import annotations

import json
from pathlib import Path

import solcx

from devnet.solc import SETTINGS, SOLC_BINARY

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def build() -> dict[str, object]:
    """Compile the probe contract; return {abi, bytecode}."""
    src = (ASSETS / "NodeProbe.sol").read_text(encoding="utf-8")
    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"NodeProbe.sol": {"content": src}},
            "settings": {**SETTINGS, "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
        },
        solc_binary=SOLC_BINARY,
    )
    c = out["contracts"]["NodeProbe.sol"]["NodeProbe"]
    return {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}


if __name__ == "__main__":
    (ASSETS / "NodeProbe.json").write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n")
