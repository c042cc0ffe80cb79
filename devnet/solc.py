"""Offline, reproducible Solidity builds: py-solc-x driving the pinned npm solc through devnet/bin/solc.

``python -m devnet.solc`` rebuilds ``contracts/build/<Name>.json``; ``--check`` exits 1 if any committed
artifact differs from a fresh build (or is missing, or stale), so the artifacts provably match the sources.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import solcx
from solcx.wrapper import get_solc_version

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLC_BINARY = REPO_ROOT / "devnet" / "bin" / "solc"
CONTRACTS_DIR = REPO_ROOT / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"

SOLC_VERSION = "0.8.28"
# Pinned: changing any of these changes every bytecode, so they live here and nowhere else.
SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 200},
    "metadata": {"bytecodeHash": "ipfs"},
}
_OUTPUTS = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]


def _sources() -> dict[str, dict[str, str]]:
    # Source unit names are repo-relative so relative imports resolve without a filesystem callback.
    return {
        f"contracts/{p.name}": {"content": p.read_text(encoding="utf-8")}
        for p in sorted(CONTRACTS_DIR.glob("*.sol"))
    }


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compile every ``contracts/*.sol``; return the artifacts of deployable contracts, by name."""
    version = str(get_solc_version(SOLC_BINARY, with_commit_hash=True))
    if not version.startswith(SOLC_VERSION + "+"):
        raise RuntimeError(f"{SOLC_BINARY} is solc {version}, expected {SOLC_VERSION} (run make setup)")
    standard_input = {
        "language": "Solidity",
        "sources": _sources(),
        # The AST tells libraries apart: their internal functions are compiled into the contracts using them.
        "settings": {**SETTINGS, "outputSelection": {"*": {"*": _OUTPUTS, "": ["ast"]}}},
    }
    output = solcx.compile_standard(standard_input, solc_binary=SOLC_BINARY)
    for diagnostic in output.get("errors", []):  # only warnings reach here; errors raise above
        print(diagnostic["formattedMessage"], file=sys.stderr)
    libraries = {
        node["name"]
        for source in output["sources"].values()
        for node in source["ast"]["nodes"]
        if node.get("nodeType") == "ContractDefinition" and node.get("contractKind") == "library"
    }
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in sorted(output["contracts"].items()):
        for name, out in sorted(contracts.items()):
            bytecode = out["evm"]["bytecode"]["object"]
            if not bytecode or name in libraries:  # interfaces, abstract bases, internal libraries
                continue
            if name in artifacts:
                raise RuntimeError(f"two contracts named {name}: artifacts are keyed by name")
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "compiler": {"version": version, "settings": SETTINGS},
                "abi": out["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
                # Kept verbatim: the bytecode's metadata hash covers these exact bytes.
                "metadata": out["metadata"],
            }
    return artifacts


def render(artifact: dict[str, Any]) -> str:
    """The committed text of an artifact: stable key order and indentation, trailing newline."""
    return json.dumps(artifact, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def diff_build(artifacts: dict[str, dict[str, Any]]) -> list[str]:
    """Names whose committed artifact is missing, different, or has no source any more."""
    wanted = {f"{name}.json": render(a) for name, a in artifacts.items()}
    present = {p.name for p in BUILD_DIR.glob("*.json")} if BUILD_DIR.is_dir() else set()
    changed = [
        n for n, text in wanted.items() if n not in present or (BUILD_DIR / n).read_text("utf-8") != text
    ]
    return sorted(changed + [n for n in present if n not in wanted])


def write_build(artifacts: dict[str, dict[str, Any]]) -> None:
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    for stale in BUILD_DIR.glob("*.json"):
        if stale.stem not in artifacts:
            stale.unlink()
    for name, artifact in artifacts.items():
        (BUILD_DIR / f"{name}.json").write_text(render(artifact), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devnet.solc", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if contracts/build is out of date")
    args = parser.parse_args(argv)
    artifacts = compile_contracts()
    changed = diff_build(artifacts)
    if args.check:
        for name in changed:
            print(f"out of date: contracts/build/{name}", file=sys.stderr)
        return 1 if changed else 0
    write_build(artifacts)
    print(f"wrote {len(artifacts)} artifacts to contracts/build ({len(changed)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
