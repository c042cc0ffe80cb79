"""The Foundry suite (tests/contracts/foundry) through the npm forge and the pinned solc, offline: the
invariants of every cross-organisation rule, the RFC 9162 and SM3 fuzz tests. `make fuzz` runs the deep
profile; this is the CI-sized default one (tests/contracts/foundry/foundry.toml)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FORGE = REPO / "node_modules" / ".bin" / "forge"
FOUNDRY = REPO / "tests" / "contracts" / "foundry"  # the Foundry project (its foundry.toml)
SOLC = REPO / "devnet" / "bin" / "solc"  # the pinned solc; imports served from the repository

# Every invariant docs/security.md cites, by suite: none may go missing or stop running.
EXPECTED = {
    "WorkflowInvariants": {
        "invariant_every_call_followed_the_rules()",
        "invariant_prescriptions_match_the_model_and_dispense_at_most_once()",
        "invariant_consents_match_the_model()",
    },
    "CommitteeInvariants": {
        "invariant_every_call_followed_the_rules()",
        "invariant_registry_matches_the_model()",
    },
    "ProvenanceLogInvariants": {
        "invariant_every_call_followed_the_rules()",
        "invariant_anchors_form_one_growing_history()",
    },
    "Rfc9162Test": {"testFuzz_honest_proofs_verify_and_forks_do_not(uint256,uint256,uint256)"},
    "SM3Test": {
        "test_gbt32905_example1_abc()",
        "test_gbt32905_example2_64_bytes()",
        "test_empty_string()",
        "testFuzz_node_is_hash_of_prefixed_pair(bytes32,bytes32)",
        "testFuzz_node_falls_back_without_precompile(bytes32,bytes32)",
        "testFuzz_hash_does_not_touch_caller_memory(bytes)",
    },
}


@pytest.mark.timeout(900)
def test_foundry_invariants_and_fuzz_tests_pass() -> None:
    assert FORGE.exists(), "npm @foundry-rs/forge missing: run make setup"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}  # the default profile
    r = subprocess.run(
        [str(FORGE), "test", "--root", str(FOUNDRY), "--use", str(SOLC), "--offline", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=880,
        env=env,
    )
    try:
        suites: dict[str, Any] = json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"forge did not answer JSON (exit {r.returncode}): {r.stdout[-3000:]}{r.stderr[-3000:]}")
    results = {
        (suite.rsplit(":", 1)[1], name): test
        for suite, body in suites.items()
        for name, test in body["test_results"].items()
    }
    failed = {k: v.get("reason") for k, v in results.items() if v["status"] != "Success"}
    assert failed == {}, failed
    assert r.returncode == 0, r.stderr[-3000:]
    for suite, names in EXPECTED.items():
        for name in names:
            test = results.get((suite, name))
            assert test is not None, f"{suite}.{name} did not run"
            kind = test["kind"]
            if "Invariant" in kind:  # it really called the handlers, many times
                assert kind["Invariant"]["runs"] >= 20 and kind["Invariant"]["calls"] >= 900, (
                    suite,
                    name,
                    kind,
                )
            elif "Fuzz" in kind:
                assert kind["Fuzz"]["runs"] >= 64, (suite, name, kind)
