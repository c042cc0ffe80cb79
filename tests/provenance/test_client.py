"""The SDK client and the auditors' CLI against a real devnet (`provenance devnet up`, embedded node)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from provenance.client import AsyncClient, Client, GatewayError
from provenance.errors import AnchorInvalid
from provenance.verification.verify import StepResult
from tests.kit.devnet import run
from tests.kit.gateway import party_meeting, rx_dispense, rx_issue, rx_review

pytestmark = pytest.mark.timeout(400)


def test_prescription_through_the_sdk_verifies_with_a_live_anchor(
    devnet: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, gateway, _ = devnet
    rx = "RX" + secrets.token_hex(5)
    with (
        Client.devnet("hospital-1", root=state, gateway=gateway) as hospital,
        Client.devnet("pharmacy-1", root=state, gateway=gateway) as pharmacy,
    ):
        prescription = hospital.issue_prescription(rx_issue(rx), rx_id=rx)
        issued, p = prescription.receipt, prescription.payload
        assert issued.status == "accepted" and issued.id == prescription.signed.record_id
        # The record carries the code's digest, never the code (which goes on the patient's slip).
        code = prescription.access_code
        assert code.value not in json.dumps(p) and code.digest(rx) in json.dumps(p)
        # The same signed record again: the same id, marked existing (idempotent, one leaf).
        again = hospital.submit(prescription.signed, p)
        assert (again.id, again.status) == (issued.id, "existing")
        # Signed anew (fresh nonce) it is another record for the same prescription: refused.
        with pytest.raises(GatewayError) as info:
            hospital.submit(hospital.sign(kind="rx.issue", subject=f"rx:{rx}", payload=p), p)
        assert info.value.code == "RX_EXISTS"
        hospital.wait_anchored(issued.id, timeout=60)
        # A pharmacy reads the prescription only with the code the patient shows (typed, any case).
        with pytest.raises(GatewayError) as info:
            pharmacy.rx_check(rx)
        assert (info.value.code, info.value.status) == ("ACCESS_CODE_REQUIRED", 403)
        check = pharmacy.rx_check(rx, access_code=str(code).lower())
        assert check["issuer"] == "hospital-1" and not check["dispensed"]
        content = pharmacy.bundle(check["issue_record"], access_code=code)
        assert content.payload == p
        assert [h["kind"] for h in pharmacy.history(f"rx:{rx}", access_code=code)] == ["rx.issue"]
        with Client.devnet("pharmacist-1", root=state, gateway=gateway) as pharmacist:  # 审方 first
            review = rx_review(rx)
            reviewed = pharmacist.sign(kind="rx.review", subject=f"rx:{rx}", payload=review)
            pharmacist.submit(reviewed, review, access_code=code)
        disp = rx_dispense(rx)
        signed = pharmacy.sign(kind="rx.dispense", subject=f"rx:{rx}", payload=disp, prev=issued.id)
        # The dispense presents the slip's code too (#23, second attack): without it, refused.
        with pytest.raises(GatewayError) as info:
            pharmacy.submit(signed, disp)
        assert (info.value.code, info.value.status) == ("ACCESS_CODE_REQUIRED", 403)
        dispensed = pharmacy.submit(signed, disp, access_code=str(code))
        bundle = pharmacy.wait_anchored(dispensed.id, timeout=60)
        report: list[StepResult] = []
        pharmacy.verifier.verify(bundle, report=report)
        assert [(r.step, r.status) for r in report][-1] == ("anchor", "passed")
        assert [h["kind"] for h in pharmacy.history(f"rx:{rx}")] == ["rx.issue", "rx.review", "rx.dispense"]
        # A second dispense is refused with the gateway's code, as a typed error.
        with pytest.raises(GatewayError) as info:
            pharmacy.submit(
                pharmacy.sign(kind="rx.dispense", subject=f"rx:{rx}", payload=rx_dispense(rx)),
                disp,
                access_code=code,
            )
        assert info.value.code in {"RX_ALREADY_DISPENSED", "PAYLOAD_DIGEST_MISMATCH"}
        second = rx_dispense(rx)
        with pytest.raises(GatewayError) as info:
            pharmacy.submit(
                pharmacy.sign(kind="rx.dispense", subject=f"rx:{rx}", payload=second),
                second,
                access_code=code,
            )
        assert info.value.code == "RX_ALREADY_DISPENSED" and info.value.status == 409
        assert info.value.details == {"rx_id": rx}  # the issuer alone is told who dispensed it
        # In a bulk request each item presents its own code (access_codes, one per item).
        [item] = pharmacy.submit_many(
            [(pharmacy.sign(kind="rx.dispense", subject=f"rx:{rx}", payload=second), second)],
            access_codes=[code],
        )
        assert item.status == "rejected" and item.raw["error"]["code"] == "RX_ALREADY_DISPENSED"
        # A bundle whose anchor names another transaction fails the live anchor step.
        from dataclasses import replace

        assert bundle.anchor is not None
        forged = replace(bundle, anchor=replace(bundle.anchor, tx_hash="0x" + "00" * 32))
        with pytest.raises(AnchorInvalid):
            pharmacy.verifier.verify(forged)

    # The auditor traces the whole prescription from the CLI, every step checked against the chain.
    _, _, rpc = devnet
    traced = run(
        "provenance",
        "trace",
        f"rx:{rx}",
        "--gateway",
        gateway,
        "--token-file",
        str(state / "tokens" / "auditor.token"),
        "--rpc",
        rpc,
        "--json",
    )
    assert traced.returncode == 0, traced.stderr
    doc = json.loads(traced.stdout)
    assert [r["kind"] for r in doc["records"]] == ["rx.issue", "rx.review", "rx.dispense"]
    assert [r["role"] for r in doc["records"]] == ["hospital", "pharmacist", "pharmacy"]
    # Keys from the gateway's /api/v1/orgs pin no sealing key: the chain's answers are the node's word.
    assert all(r["ok"] and r["steps"]["anchor"] == "warning" for r in doc["records"])
    # With the devnet's trust file (chain.validators), each anchoring block is proven: passed.
    pinned = run(
        *("provenance", "trace", f"rx:{rx}", "--gateway", gateway, "--rpc", rpc, "--json"),
        *("--token-file", str(state / "tokens" / "auditor.token"), "--trust", str(state / "trust.json")),
    )
    assert pinned.returncode == 0, pinned.stderr
    records = json.loads(pinned.stdout)["records"]
    assert all(r["ok"] and r["verdict"] == "verified" and r["steps"]["anchor"] == "passed" for r in records)
    # The table reads whole in an 80-column terminal (issue 21): no line wider, no value cut to `organ…`.
    monkeypatch.setenv("COLUMNS", "80")
    table = run(
        *("provenance", "trace", f"rx:{rx}", "--gateway", gateway, "--rpc", rpc),
        *("--token-file", str(state / "tokens" / "auditor.token"), "--trust", str(state / "trust.json")),
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, table.stdout
    for word in (
        "organisation",
        "hospital-1",
        "pharmacy-1",
        "hospital",
        "pharmacy",
        "pharmacist",
        "rx.issue",
        "rx.review",
        "rx.dispense",
    ):
        assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", table.stdout), (word, table.stdout)
    assert table.stdout.count("S✓ I✓ A✓") == 3 and table.stdout.count("verified") >= 3, table.stdout
    for r in records:
        assert r["id"][:8] + "…" in table.stdout


def test_the_readme_sdk_example_runs(
    devnet: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's "From Python" block, as written, against the devnet (``.devnet`` is its folder)."""
    state, gateway, _ = devnet
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    block = readme.split("## From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / ".devnet").symlink_to(state)
    monkeypatch.chdir(tmp_path)
    devnet_client = Client.devnet.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(  # the devnet's gateway listens on a port of its own
        Client, "devnet", classmethod(lambda cls, org, **kw: devnet_client(cls, org, gateway=gateway, **kw))
    )
    printed: list[str] = []
    scope = {"print": lambda *a: printed.append(" ".join(map(str, a)))}
    exec(compile(block, "README.md", "exec"), scope)  # our own README
    code = str(scope["issued"].access_code)  # type: ignore[attr-defined]
    assert printed[0] == f"print on the slip: {code}" and re.fullmatch(r"([0-9A-Z]{4}-){4}[0-9A-Z]{4}", code)
    assert scope["check"]["valid"] and scope["prescription"]["identifier"][0]["value"] == "RX1"  # type: ignore[index]
    assert scope["dispensed"].status == "accepted"  # type: ignore[attr-defined]
    # The whole chain, and the box looked up by its raw scan: where (and when, as printed).
    box: Any = scope["box"]
    assert box["code"] == "(01)09506000134352(21)SN0001"
    assert (box["dispense"]["rx_id"], box["dispense"]["record"]) == ("RX1", scope["dispensed"].id)  # type: ignore[attr-defined]
    assert printed[1:] == [f"pharmacy-1 {box['dispense']['handed_over_at']}"]
    with Client.devnet("auditor", root=state) as auditor:  # (the patched factory names the gateway)
        kinds = [item["kind"] for item in auditor.history("rx:RX1")]
    assert kinds == ["rx.issue", "rx.review", "rx.dispense", "rx.settle"]

    async def look_up(org: str, code: str) -> dict[str, Any]:
        async with AsyncClient.devnet(org, root=state, gateway=gateway) as client:
            result: dict[str, Any] = await client.trace_code(code)
            return result

    # The async client too, in the parenthesised form; another pharmacy gets the typed error, code only.
    assert asyncio.run(look_up("insurer", box["code"]))["dispense"] == box["dispense"]
    with pytest.raises(GatewayError) as info:
        asyncio.run(look_up("pharmacy-2", str(scope["gs1_scan"])))
    assert (info.value.code, info.value.status, info.value.details) == (
        "TRACE_CODE_REUSED",
        409,
        {"code": box["code"]},
    )


async def test_async_client_party_records_and_history(devnet: tuple[Path, str, str]) -> None:
    state, gateway, _ = devnet
    async with AsyncClient.devnet("party-branch", root=state, gateway=gateway) as branch:
        ids = []
        for i in range(3):
            payload = party_meeting("party-branch", f"M{secrets.token_hex(3)}{i}")
            signed = branch.sign(kind="party.record", subject="branch:party-branch", payload=payload)
            ids.append((await branch.submit(signed, payload)).id)
        await branch.wait_anchored(ids[-1], timeout=60)
        history = [h["id"] async for h in branch.history("branch:party-branch", page_size=2)]
        assert history[-3:] == ids
        bundle = await branch.verify(ids[0])
        assert bundle.signed.record_id == ids[0]


def test_trace_and_orgs_export_from_the_cli(devnet: tuple[Path, str, str], tmp_path: Path) -> None:
    state, gateway, rpc = devnet
    manifest = json.loads((state / "manifest.json").read_text())
    trust = tmp_path / "trust.json"
    contracts = manifest["contracts"]
    export = ("provenance", "orgs", "export", "--rpc", rpc, "--registry", contracts["OrgRegistry"])
    # By default the export pins everything a verifier needs, read from the chain: the log's keys (the log
    # operator's registered keys), its name and origin (from a checkpoint the chain anchored, its
    # signature checked), the chain id and the contracts (issue 25, finding 3).
    exported = run(*export, "--out", str(trust), "--gateway", gateway)
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(trust.read_text())
    assert {o["id"] for o in doc["orgs"]} >= {"hospital-1", "pharmacy-1", "auditor", "log-operator"}
    log = manifest["log"]
    assert doc["logs"] == [
        {"name": log["key_name"], "origin": log["origin"], "public_key": log["public_key"]}
    ]
    assert doc["chain"] == {
        "chain_id": manifest["chain_id"],
        "org_registry": contracts["OrgRegistry"],
        "provenance_log": contracts["ProvenanceLog"],
        "rpc_url": rpc,
        # The node's sealing keys (gm_validators), which the devnet's own trust file pins too.
        "validators": [{"public_key": pem} for pem in manifest["validators"]],
    }
    assert (
        manifest["validators"]
        and doc["chain"]["validators"]
        == json.loads((state / "trust.json").read_text())["chain"]["validators"]
    )
    # Named by hand, name and origin must agree with what the chain anchored.
    wrong = run(*export, "--out", str(tmp_path / "t.json"), "--gateway", gateway, "--log-origin", "other/log")
    assert wrong.returncode == 2 and "EXPORT_INVALID" in wrong.stderr, wrong.stderr
    with Client.devnet("party-branch", root=state, gateway=gateway) as branch:
        payload = party_meeting("party-branch", f"M{secrets.token_hex(3)}")
        rid = branch.submit(
            branch.sign(kind="party.record", subject="branch:party-branch", payload=payload), payload
        ).id
        bundle_path = tmp_path / "bundle.json"
        bundle_path.write_text(branch.wait_anchored(rid, timeout=60).to_json())
    verify = ("provenance", "verify", str(bundle_path), "--trust", str(trust), "--rpc", rpc, "--json")
    verified = run(*verify, "--gateway", gateway)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["verdict"] == "verified"
    assert {s["step"]: s["status"] for s in report["steps"]} == dict.fromkeys(
        ("digest", "payload", "signer", "signature", "checkpoint", "inclusion", "anchor"), "passed"
    )
    # An unknown subject: one clear line, non-zero exit.
    missing = run(
        "provenance",
        "trace",
        "rx:does-not-exist",
        "--gateway",
        gateway,
        "--token-file",
        str(state / "tokens" / "auditor.token"),
    )
    assert missing.returncode == 2 and "no records" in missing.stderr
