"""The committed artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from adapters import registry as domains
from devnet.solc import CONTRACTS_DIR, REPO_ROOT, SOLC_BINARY, diff_build
from provenance.chain.contracts import (
    LOG,
    REGISTRY,
    ProposalKind,
    ProposalStatus,
    Role,
    load_artifact,
)

EIP170_LIMIT = 24576  # Besu and anvil refuse larger runtime code


# The network's contracts: the registry, the log, and those the registered domains declare.
NETWORK = (REGISTRY, LOG, *domains.contracts())


def test_artifacts_match_sources(fresh_build: dict[str, dict[str, Any]]) -> None:
    artifacts = fresh_build
    assert set(artifacts) == set(NETWORK)
    assert diff_build(artifacts) == [], "run `python -m devnet.solc` and commit contracts/build"


def test_runtime_code_fits_eip170() -> None:
    for name in NETWORK:
        size = len(bytes.fromhex(load_artifact(name).deployed_bytecode[2:]))
        assert 0 < size <= EIP170_LIMIT, name


def _solidity_enum(source: str, name: str) -> list[str]:
    text = (CONTRACTS_DIR / source).read_text()
    body = re.search(rf"enum {name} \{{(.*?)\}}", text, re.S)
    assert body is not None
    return [
        re.sub(r"//.*", "", line).strip().rstrip(",") for line in body.group(1).splitlines() if line.strip()
    ]


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


def test_python_enums_mirror_solidity() -> None:
    assert [_snake(n) for n in _solidity_enum("IOrgRegistry.sol", "Role")] == [r.name for r in Role]
    kinds = _solidity_enum("OrgRegistry.sol", "ProposalKind")
    assert [_snake(n) for n in kinds[1:]] == [k.name for k in ProposalKind]
    statuses = _solidity_enum("OrgRegistry.sol", "ProposalStatus")
    assert [_snake(n) for n in statuses] == [s.name for s in ProposalStatus]


def test_every_custom_error_has_a_test() -> None:
    tests = "".join(p.read_text() for p in sorted(Path(__file__).parent.glob("test_*.py")))
    for name in NETWORK:
        errors = {i["name"] for i in load_artifact(name).abi if i["type"] == "error"}
        untested = sorted(e for e in errors if f'reverts("{e}")' not in tests)
        assert untested == [], f"{name}: no test asserts {untested}"


def _compile_via_wrapper(source: str, cwd: Path) -> dict[str, Any]:
    standard_input = {
        "language": "Solidity",
        "sources": {"probe.sol": {"content": source}},
        "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
    }
    r = subprocess.run(
        [str(SOLC_BINARY), "--standard-json", "--allow-paths", "/"],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def test_solc_wrapper_serves_imports_from_the_repository_only(tmp_path: Path) -> None:
    """devnet/bin/solc answers solc's import callback (forge, Slither) with files inside the repository,
    and nothing else: not an absolute path, not ``..`` out of it, not a symlink that leads out."""
    ok = _compile_via_wrapper('pragma solidity ^0.8.28; import {SM3} from "contracts/SM3.sol";', REPO_ROOT)
    assert not [e for e in ok.get("errors", []) if e["severity"] == "error"], ok.get("errors")
    assert "contracts/SM3.sol" in ok["sources"]

    outside = tmp_path / "outside.sol"
    outside.write_text("pragma solidity ^0.8.28; contract Outside {}")
    link_dir = Path(tempfile.mkdtemp(dir=REPO_ROOT / "tests" / "contracts", prefix=".solc-link-"))
    try:
        (link_dir / "escape.sol").symlink_to(outside)
        escape = (link_dir / "escape.sol").relative_to(REPO_ROOT)
        for path in (str(outside), "../" * 12 + str(outside).lstrip("/"), str(escape)):
            out = _compile_via_wrapper(f'pragma solidity ^0.8.28; import "{path}";', REPO_ROOT)
            messages = [e["message"] for e in out.get("errors", []) if e["severity"] == "error"]
            assert any("only the repository is served" in m for m in messages), (path, messages)
    finally:
        shutil.rmtree(link_dir)
