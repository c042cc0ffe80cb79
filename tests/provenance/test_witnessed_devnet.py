"""The devnet's witnesses (`provenance devnet up`): three witness processes run by the regulator, the auditor
and the environment bureau; the trust file's 2-of-3 policy; devnet bundles verify with it in the SDK and the
CLI (`verify`, `receipt verify --bundle`), and fail without it; `provenance monitor` follows the devnet."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from provenance.client import Client
from provenance.log.cosignature import WitnessKey, WitnessPolicy
from provenance.verification.trust import TrustStore
from tests.kit.devnet import run
from tests.kit.gateway import rx_issue


def _strip_cosignatures(note: str, policy: WitnessPolicy) -> str:
    """The note without the trusted witnesses' lines (the log's own signature line kept)."""
    names = {w.name for w in policy.witnesses}
    head, _, sigs = note.rpartition("\n\n")
    kept = [line for line in sigs.splitlines(keepends=True) if line.split(" ")[1] not in names]
    return head + "\n\n" + "".join(kept)


def test_devnet_witnesses_cosign_and_bundles_verify_with_the_policy(
    devnet: tuple[Path, str, str], tmp_path: Path
) -> None:
    state, gateway, _ = devnet
    manifest = json.loads((state / "manifest.json").read_text())
    trust = TrustStore.load(state / "trust.json")
    assert trust.witnesses is not None and trust.witnesses.quorum == 2
    assert sorted(w.org for w in trust.witnesses.witnesses) == ["auditor", "env-bureau", "regulator"]
    # Each witness key is its organisation's second key in OrgRegistry, as the trust file lists it.
    for w in trust.witnesses.witnesses:
        assert w.public_key in [k.public_key for k in trust.orgs[w.org].keys]
    endpoints = json.loads((state / "run" / "endpoints.json").read_text())["witnesses"]
    assert {w["org"] for w in endpoints} == {w["org"] for w in manifest["witnesses"]}
    for w in endpoints:
        health = httpx.get(f"{w['url']}/healthz", timeout=5).json()
        assert health["name"] == w["name"] and health["logs"][0]["origin"] == manifest["log"]["origin"]

    rx = "RX" + secrets.token_hex(5)
    with Client.devnet("hospital-1", root=state, gateway=gateway) as hospital:
        p = rx_issue(rx)
        accepted = hospital.submit(hospital.sign(kind="rx.issue", subject=f"rx:{rx}", payload=p), p)
        bundle = hospital.wait_anchored(accepted.id, timeout=60)
        hospital.verifier.verify(bundle)  # the devnet trust file: log key, org keys, 2 of 3 witnesses
    assert len(trust.witnesses.check(bundle.checkpoint)) >= 2

    # The CLI, with the trust file and without the cosignatures.
    good, bad = tmp_path / "bundle.json", tmp_path / "stripped.json"
    good.write_text(bundle.to_json())
    doc = bundle.to_dict()
    doc["log"]["checkpoint"] = _strip_cosignatures(doc["log"]["checkpoint"], trust.witnesses)
    bad.write_text(json.dumps(doc))
    receipt = tmp_path / "receipt.txt"
    assert accepted.acceptance is not None
    receipt.write_text(accepted.acceptance)
    trust_file = str(state / "trust.json")
    ok = run("provenance", "verify", str(good), "--trust", trust_file)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = run("provenance", "verify", str(bad), "--trust", trust_file, "--json")
    assert refused.returncode == 1
    result = json.loads(refused.stdout)
    assert (result["failed_step"], result["code"]) == ("checkpoint", "WITNESS_QUORUM_MISSING")
    assert "cosigned by: none" in result["message"]
    kept = run("provenance", "receipt", "verify", str(receipt), "--trust", trust_file, "--bundle", str(good))
    assert kept.returncode == 0, kept.stdout + kept.stderr
    broken = run("provenance", "receipt", "verify", str(receipt), "--trust", trust_file, "--bundle", str(bad))
    assert broken.returncode == 1 and "WITNESS_QUORUM_MISSING" in broken.stderr

    # The monitor follows the devnet's tiles with the same trust file, and an auditor's token (the entry
    # bundles are the signed envelopes: for oversight only).
    token = str(state / "tokens" / "auditor.token")
    mon = run("provenance", "monitor", "--tiles", f"{gateway}/tiles", "--trust", trust_file,
              "--token-file", token, "--state", str(tmp_path / "monitor.json"), "--json")  # fmt: skip
    assert mon.returncode == 0, mon.stdout + mon.stderr
    report = json.loads(mon.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["entries_checked"] == report["size"] >= 1


def test_the_devnet_verify_page_applies_the_policy(devnet: tuple[Path, str, str], tmp_path: Path) -> None:
    """The /verify page the devnet's gateway serves, in Chromium: the devnet's bundle and trust file verify,
    and the bundle stripped of its cosignatures fails at the checkpoint step."""
    from tests.kit.webui import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    state, gateway, _ = devnet
    trust = TrustStore.load(state / "trust.json")
    assert trust.witnesses is not None
    with Client.devnet("hospital-1", root=state, gateway=gateway) as hospital:
        p = rx_issue("RX" + secrets.token_hex(5))
        accepted = hospital.submit(hospital.sign(kind="rx.issue", subject=f"rx:{p['id']}", payload=p), p)
        bundle = hospital.wait_anchored(accepted.id, timeout=60)
    good, bad = tmp_path / "bundle.json", tmp_path / "stripped.json"
    good.write_text(bundle.to_json())
    doc = bundle.to_dict()
    doc["log"]["checkpoint"] = _strip_cosignatures(doc["log"]["checkpoint"], trust.witnesses)
    bad.write_text(json.dumps(doc))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="en-GB")
            page.goto(f"{gateway}/verify/")
            page.wait_for_selector("html[lang]")
            page.set_input_files("#trust", str(state / "trust.json"))
            page.locator("#trust-status", has_text="organisations").wait_for(timeout=10_000)
            for path, verdict in ((good, "verified"), (bad, "failed")):
                page.set_input_files("#file", str(path))
                page.locator(f"#results .verdict[data-verdict={verdict}]").wait_for(timeout=10_000)
            step = page.locator('li[data-step="checkpoint"]')
            assert step.get_attribute("data-status") == "failed"
            assert "witness cosignatures" in step.inner_text()
        finally:
            browser.close()


def test_orgs_export_writes_the_witness_policy_from_the_registry(
    devnet: tuple[Path, str, str], tmp_path: Path
) -> None:
    """`provenance orgs export --witness ORG=VKEY` pins only witness keys OrgRegistry holds for ORG."""
    from provenance.crypto import SM2PrivateKey

    state, gateway, rpc = devnet
    manifest = json.loads((state / "manifest.json").read_text())
    devnet_policy = TrustStore.load(state / "trust.json").witnesses
    assert devnet_policy is not None
    registry = manifest["contracts"]["OrgRegistry"]
    base = ["provenance", "orgs", "export", "--rpc", rpc, "--registry", registry, "--gateway", gateway]
    args = [f"{w.org}={w.vkey()}" for w in devnet_policy.witnesses]
    out = tmp_path / "trust.json"
    done = run(*base, "--out", str(out), *(a for w in args for a in ("--witness", w)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert TrustStore.load(out).witnesses == devnet_policy  # 2 of 3: the majority by default
    # A key that is not the named organisation's (another org's, or none registered) is refused.
    w0 = devnet_policy.witnesses[0]
    elsewhere = run(*base, "--out", str(tmp_path / "x.json"), "--witness", f"hospital-1={w0.vkey()}")
    assert elsewhere.returncode == 2 and "not a registered, unrevoked key of 'hospital-1'" in elsewhere.stderr
    stranger = WitnessKey(name=w0.name, public_key=SM2PrivateKey.generate().public_key(), org=w0.org)
    refused = run(*base, "--out", str(tmp_path / "y.json"), "--witness", f"{w0.org}={stranger.vkey()}")
    assert refused.returncode == 2 and "not a registered, unrevoked key" in refused.stderr
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()
