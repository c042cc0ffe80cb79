"""`provenance demo --devnet` runs the prescription chain on a real devnet; `provenance trace rx:…` shows it
whole, each step verified; `provenance trace code:…` answers where and when a box was dispensed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.kit.devnet import run

pytestmark = pytest.mark.timeout(600)


def _trace(state: Path, gateway: str, rpc: str, what: str, org: str, *extra: str) -> tuple[int, str, str]:
    r = run(
        "provenance",
        "trace",
        what,
        "--gateway",
        gateway,
        "--token-file",
        str(state / "tokens" / f"{org}.token"),
        "--trust",
        str(state / "trust.json"),
        "--rpc",
        rpc,
        *extra,
    )
    return r.returncode, r.stdout, r.stderr


def test_demo_runs_the_chain_and_trace_shows_each_step_and_each_box(devnet: tuple[Path, str, str]) -> None:
    state, gateway, rpc = devnet
    demo = run("provenance", "demo", "--devnet", str(state), "--gateway", gateway, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    said = " ".join(demo.stdout.split())  # rich wraps at the terminal's width
    found = re.search(r"rx:(RX-DEMO-[0-9A-F]{8})", said)
    nmpa = re.search(r"codes (\d{20})", said)
    gs1 = re.search(r"box (\(01\)\d{14}\(17\)\d{6}\(21\)SN[3-9A-HJK]{10})", said)
    assert found and nmpa and gs1, demo.stdout
    rx = found.group(1)

    # The whole chain, in order, each step verified against pinned keys and the live anchor.
    code, out, err = _trace(state, gateway, rpc, f"rx:{rx}", "auditor", "--json")
    assert code == 0, out + err
    doc = json.loads(out)
    assert [r["kind"] for r in doc["records"]] == ["rx.issue", "rx.review", "rx.dispense", "rx.settle"]
    assert [r["org"] for r in doc["records"]] == ["hospital-1", "pharmacist-1", "pharmacy-1", "insurer"]
    assert {r["verdict"] for r in doc["records"]} == {"verified"}
    assert {r["steps"]["anchor"] for r in doc["records"]} == {"passed"}
    dispense = doc["records"][2]["id"]

    # A box by its code, typed raw (no parentheses): normalised, then where and when, its dispense verified.
    raw = gs1.group(1).replace("(", "").replace(")", "")
    for box, normal in ((nmpa.group(1), nmpa.group(1)), (raw, gs1.group(1))):
        code, out, err = _trace(state, gateway, rpc, f"code:{box}", "regulator", "--json")
        assert code == 0, out + err
        answer = json.loads(out)
        assert (answer["code"], answer["dispensed"]) == (normal, True)
        use = answer["dispense"]
        assert (use["record"], use["rx_id"], use["pharmacy"]) == (dispense, rx, "pharmacy-1")
        assert answer["check"]["verdict"] == "verified", answer["check"]
        assert (
            answer["check"]["steps"]["anchor"] == "passed" and answer["check"]["steps"]["listing"] == "passed"
        )
    code, out, err = _trace(state, gateway, rpc, f"code:{raw}", "auditor")
    assert code == 0 and "dispensed by pharmacy-1 (pharmacy)" in out and f"rx:{rx}" in out, out + err

    # Another pharmacy learns that the box was dispensed, never where: a message, non-zero exit.
    code, out, err = _trace(state, gateway, rpc, f"code:{raw}", "pharmacy-2")
    assert code == 2 and "TRACE_CODE_REUSED" in err and dispense not in out + err, out + err
    assert "Traceback" not in err, err
    # A box never handed over; a code of no accepted form (refused before any request).
    code, out, err = _trace(state, gateway, rpc, "code:81234567890123450000", "pharmacy-2")
    assert code == 0 and "not dispensed" in out, out + err
    code, out, err = _trace(state, gateway, rpc, "code:(01)09506000134353(21)X", "regulator")
    assert code == 2 and "TRACE_CODE_INVALID" in err, out + err
