"""Auditors' checks against real chains: the whole-log audit and trust export (anvil, the real contracts),
and the workflow audit against a real devnet (embedded node, gateway) after real flows and forged calls."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from devnet.embedded import free_port
from provenance.audit import check_events, check_links
from provenance.chain.anchor import ChainAnchorChecker
from provenance.chain.contracts import ContractReverted, at, chain_key, transact
from provenance.chain.events import (
    WorkflowEvent,
    read_account_changes,
    read_anchors,
    read_workflow_events,
    workflow_registry,
)
from provenance.client import NOT_YET_LOGGED, Client, GatewayError, GatewayProofs
from provenance.crypto import SM2PrivateKey
from provenance.errors import NotFound
from provenance.log.record_log import RecordLog
from provenance.manifest import Manifest
from provenance.records import digest_of
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit.devnet import run
from tests.kit.gateway import (
    kit_code,
    party_meeting,
    rx_dispense,
    rx_issue,
    rx_review,
    rx_revoke,
    rx_settle,
    share_access,
    share_consent,
    share_request,
    share_revoke_consent,
)
from tests.provenance.anvil_net import anvil_network

Devnet = tuple[Path, str, str]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with anvil_network(tmp_path_factory.mktemp("net"), hospital_name="医院") as (engine, manifest):
        yield engine, manifest, Web3(Web3.HTTPProvider(engine.rpc_url))


def test_anchors_extend_each_other_and_a_fork_is_named(net):
    _, manifest, w3 = net
    contract = at(w3, "ProvenanceLog", manifest.contracts["ProvenanceLog"])
    operator = manifest.account("logop")
    honest = RecordLog.in_memory(origin="o", key_name="k", key=SM2PrivateKey.generate())
    previous = 0
    for size in (3, 7, 12):
        while honest.size < size:
            honest.tree.append(f"entry {honest.size}".encode())
        proof = honest.tree.consistency_proof(previous, size) if previous else []
        transact(w3, contract.functions.anchor(size, honest.tree.root(size), proof), operator)
        previous = size
    anchors = read_anchors(w3, contract.address)
    assert [a.tree_size for a in anchors] == [3, 7, 12]
    links = check_links(anchors, honest.tree.consistency_proof)
    assert [lk.ok for lk in links] == [True, True]

    # The operator rewrites history: a tree of 15 whose first leaves differ. ProvenanceLog checks the
    # consistency proof on chain, so the fork is never anchored ...
    forked = RecordLog.in_memory(origin="o", key_name="k", key=SM2PrivateKey.generate())
    for i in range(15):
        forked.tree.append(f"rewritten {i}".encode())
    with pytest.raises(ContractReverted) as refused:
        fn = contract.functions.anchor(15, forked.tree.root(15), forked.tree.consistency_proof(12, 15))
        transact(w3, fn, operator)
    assert refused.value.error == "InconsistentAnchor"

    def served(first: int, second: int) -> list[bytes]:
        # ... and a gateway that serves the fork's proofs for the anchored links is named by the audit.
        tree = honest.tree if second <= 7 else forked.tree
        return tree.consistency_proof(first, second)

    links = check_links(read_anchors(w3, contract.address), served)
    assert [lk.ok for lk in links] == [True, False]
    assert links[-1].reason.startswith("fork:")


def test_orgs_export_writes_key_windows(net, tmp_path):
    engine, manifest, _ = net
    out = tmp_path / "trust.json"
    export = ["orgs", "export", "--rpc", engine.rpc_url, "--registry", manifest.contracts["OrgRegistry"]]
    export += ["--out", str(out)]

    def run_export(*extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "provenance", *export, *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    # Nothing anchored yet and no gateway: the log's name and origin must be given, with its contract.
    r = run_export("--log-key-name", "logkey")
    assert r.returncode == 2 and "EXPORT_INVALID" in r.stderr, r.stderr
    log = manifest.contracts["ProvenanceLog"]
    r = run_export("--log-contract", log, "--log-key-name", "logkey", "--log-origin", "net/log")
    assert r.returncode == 0, r.stderr
    store = TrustStore.load(out)
    assert set(store.orgs) == {"hosp-1", "logop"}
    assert store.orgs["hosp-1"].role == "hospital" and store.orgs["hosp-1"].name == "医院"
    assert store.orgs["hosp-1"].keys[0].pem == manifest.org("hosp-1").public_key
    # The log keys are the log operator's registered keys, pinned with the name and origin given.
    assert [(k.name, k.origin, k.pem) for k in store.logs] == [
        ("logkey", "net/log", manifest.org("logop").public_key)
    ]
    assert json.loads(out.read_text())["chain"] == {
        "chain_id": engine.chain_id,
        "org_registry": manifest.contracts["OrgRegistry"],
        "provenance_log": log,
        "rpc_url": engine.rpc_url,
    }
    # A contract of the same registry that is no ProvenanceLog is refused, not pinned.
    r = run_export(
        "--log-contract", manifest.contracts["Prescriptions"], "--log-key-name", "k", "--log-origin", "o"
    )
    assert r.returncode == 2 and "EXPORT_INVALID" in r.stderr, r.stderr
    assert "is not a ProvenanceLog" in " ".join(r.stderr.split())


# --- audit workflow: every workflow event backed by a signed record (a real devnet, `devnet` fixture) ---
# The forgeries stay on chain: the test that expects a clean audit runs before the one that forges.


def _settled(client: Client, record_id: str) -> str:
    """Wait until the record's contract call is mined and the record is anchored; its record id."""
    deadline = time.monotonic() + 60
    while (status := client.record(record_id)["chain_status"]) not in ("confirmed", "rejected"):
        assert time.monotonic() < deadline, f"{record_id} not sent to the chain"
        time.sleep(0.1)
    assert status == "confirmed", client.record(record_id)
    client.wait_anchored(record_id, timeout=60)
    return record_id


def _submit(client: Client, kind: str, subject: str, payload: Any, prev: str | None = None) -> str:
    signed = client.sign(kind=kind, subject=subject, payload=payload, prev=prev)
    # A dispense presents its prescription's code (the test kit's, which rx_issue attaches).
    code = kit_code(subject.removeprefix("rx:")) if kind in ("rx.dispense", "rx.review") else None
    return client.submit(signed, payload, access_code=code).id


@pytest.fixture(scope="module")
def flows(devnet: Devnet) -> dict[str, str]:
    """Real flows through the gateway, one record of each workflow kind; record ids by kind, all on chain."""
    state, gateway, _ = devnet
    orgs = ("hospital-1", "pharmacist-1", "pharmacy-1", "insurer", "data-owner", "data-user", "party-branch")
    clients = {org: Client.devnet(org, root=state, gateway=gateway) for org in orgs}

    def record(org: str, kind: str, subject: str, payload: Any, prev: str | None = None) -> str:
        return _settled(clients[org], _submit(clients[org], kind, subject, payload, prev))

    rx, rx2, request = (
        "RX" + secrets.token_hex(5),
        "RX" + secrets.token_hex(5),
        "REQ" + secrets.token_hex(5),
    )
    dataset = "dataset:health-stats"
    consent = share_consent(request)
    try:
        ids = {"rx.issue": record("hospital-1", "rx.issue", f"rx:{rx}", rx_issue(rx))}
        ids["rx.review"] = record("pharmacist-1", "rx.review", f"rx:{rx}", rx_review(rx))
        ids["rx.dispense"] = record("pharmacy-1", "rx.dispense", f"rx:{rx}", rx_dispense(rx), ids["rx.issue"])
        settlement = rx_settle(rx, ids["rx.dispense"])
        ids["rx.settle"] = record("insurer", "rx.settle", f"rx:{rx}", settlement, ids["rx.dispense"])
        issued = record("hospital-1", "rx.issue", f"rx:{rx2}", rx_issue(rx2))
        ids["rx.revoke"] = record("hospital-1", "rx.revoke", f"rx:{rx2}", rx_revoke(rx2), issued)
        ids["share.request"] = record(
            "data-user", "share.request", dataset, share_request(request, "data-user")
        )
        ids["share.consent"] = record("data-owner", "share.consent", dataset, consent, ids["share.request"])
        access = share_access(request, digest_of(consent), "data-user")
        ids["share.access"] = record("data-user", "share.access", dataset, access, ids["share.consent"])
        withdrawal = share_revoke_consent(request)
        ids["share.revoke_consent"] = record("data-owner", "share.revoke_consent", dataset, withdrawal)
        meeting = party_meeting("party-branch", "M" + secrets.token_hex(4))
        ids["party.record"] = record("party-branch", "party.record", "branch:party-branch", meeting)
    finally:
        for c in clients.values():
            c.close()
    return ids


def _audit_workflow(devnet: Devnet, *extra: str) -> subprocess.CompletedProcess[str]:
    state, gateway, rpc = devnet
    return run(
        "provenance",
        "audit",
        "workflow",
        "--rpc",
        rpc,
        "--gateway",
        gateway,
        "--token-file",
        str(state / "tokens" / "auditor.token"),
        "--manifest",
        str(state / "manifest.json"),
        *extra,
    )


def test_audit_workflow_passes_when_every_event_has_its_signed_record(
    devnet: Devnet, flows: dict[str, str]
) -> None:
    r = _audit_workflow(devnet, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["failed"] == 0 and doc["ok"] == doc["events"] == len(doc["results"])
    assert doc["keys"] == "OrgRegistry"
    ours = {res["digest"]: res for res in doc["results"] if res["digest"] in flows.values()}
    # Each record made exactly one contract call, and each call's event is backed by that very record.
    assert {(res["contract"], res["event"], res["record"]["kind"]) for res in ours.values()} == {
        ("Prescriptions", "Issued", "rx.issue"),
        ("Prescriptions", "Dispensed", "rx.dispense"),
        ("Prescriptions", "Revoked", "rx.revoke"),
        ("Prescriptions", "Reviewed", "rx.review"),
        ("Prescriptions", "Settled", "rx.settle"),
        ("DataSharing", "Requested", "share.request"),
        ("DataSharing", "ConsentGranted", "share.consent"),
        ("DataSharing", "AccessRecorded", "share.access"),
        ("DataSharing", "ConsentWithdrawn", "share.revoke_consent"),
        ("PartyRecords", "RecordAdded", "party.record"),
    }
    assert all(res["ok"] and res["record"]["org"] == res["org"] for res in ours.values())
    # The same with the trust file the devnet pins (`--trust`), and as a table.
    r = _audit_workflow(devnet, "--trust", str(devnet[0] / "trust.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 without a matching signed record" in r.stdout


def test_audit_workflow_names_forged_workflow_calls(devnet: Devnet, flows: dict[str, str]) -> None:
    """The gateway's operator uses a pharmacy's transaction key directly: two dispenses nobody signed."""
    state, gateway, rpc = devnet
    rx_a, rx_b = "RX" + secrets.token_hex(5), "RX" + secrets.token_hex(5)
    with Client.devnet("hospital-1", root=state, gateway=gateway) as hospital:
        issue_b = ""
        for rx in (rx_a, rx_b):
            issue_b = _settled(hospital, _submit(hospital, "rx.issue", f"rx:{rx}", rx_issue(rx)))
    # Both reviewed through the gateway (signed records): the deployment requires review before dispense.
    with Client.devnet("pharmacist-1", root=state, gateway=gateway) as pharmacist:
        for rx in (rx_a, rx_b):
            _settled(pharmacist, _submit(pharmacist, "rx.review", f"rx:{rx}", rx_review(rx)))
    manifest = Manifest.load(state / "manifest.json")
    w3 = Web3(Web3.HTTPProvider(rpc))
    prescriptions = at(w3, "Prescriptions", manifest.contracts["Prescriptions"])
    pharmacy = manifest.account("pharmacy-2")  # the key file the gateway holds
    unsigned = transact(
        w3, prescriptions.functions.dispense(chain_key("rx", rx_a), secrets.token_bytes(32)), pharmacy
    )
    # A real record's digest, but of an rx.issue: it cannot stand for a dispense.
    other_kind = transact(
        w3, prescriptions.functions.dispense(chain_key("rx", rx_b), bytes.fromhex(issue_b)), pharmacy
    )
    tx_unsigned, tx_other = unsigned["transactionHash"].to_0x_hex(), other_kind["transactionHash"].to_0x_hex()
    forged = {tx_unsigned, tx_other}

    r = _audit_workflow(devnet)
    assert r.returncode == 1, r.stdout + r.stderr
    named = {line.split(" tx ")[1].split(":")[0]: line for line in r.stderr.splitlines() if line.strip()}
    assert set(named) == forged, r.stderr  # one line an event, naming it
    assert named[tx_unsigned].startswith("Prescriptions.Dispensed block ")
    assert "no signed record" in named[tx_unsigned] and "kind mismatch" in named[tx_other]
    r = _audit_workflow(devnet, "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    failed = {res["tx_hash"]: res for res in doc["results"] if not res["ok"]}
    assert set(failed) == forged and doc["failed"] == 2
    assert failed[tx_unsigned]["event"] == "Dispensed" and failed[tx_unsigned]["check"] == "record"
    assert failed[tx_unsigned]["reason"].startswith("no signed record")
    assert failed[tx_unsigned]["org"] == "pharmacy-2" and failed[tx_unsigned]["sender"] == pharmacy.address
    assert failed[tx_other]["check"] == "kind" and failed[tx_other]["reason"].startswith("kind mismatch")
    assert failed[tx_other]["record"]["kind"] == "rx.issue"


def test_check_events_names_each_mismatch(devnet: Devnet, flows: dict[str, str]) -> None:
    """The pure check on real events and bundles, each altered the way a forged call would differ."""
    state, gateway, rpc = devnet
    manifest = Manifest.load(state / "manifest.json")
    w3 = Web3(Web3.HTTPProvider(rpc))
    events = {e.digest: e for e in read_workflow_events(w3, manifest.contracts)}
    accounts = read_account_changes(w3, workflow_registry(w3, manifest.contracts))
    token = (state / "tokens" / "auditor.token").read_text().strip()
    proofs = GatewayProofs(gateway, token=token)  # online, an anchor is checked against its neighbours
    checker = ChainAnchorChecker(w3, contract=manifest.contracts["ProvenanceLog"], proofs=proofs)
    verifier = Verifier(trust=TrustStore.load(state / "trust.json"), anchor_checker=checker)
    with Client(base_url=gateway, token=token) as client:
        documents = {d: client.bundle_document(d, payload=False) for d in flows.values()}

    def fetch(digest: str) -> Any:
        if digest not in documents:
            raise NotFound(f"no record {digest}")
        return documents[digest]

    def check(*evs: WorkflowEvent, source: Callable[[str], Any] = fetch) -> list[tuple[str, str]]:
        return [(r.check, r.reason) for r in check_events(evs, source, verifier, accounts)]

    dispensed, consented = events[flows["rx.dispense"]], events[flows["share.consent"]]
    assert check(dispensed, consented) == [("", ""), ("", "")]
    assert check(events[flows["party.record"]]) == [("", "")]  # no subject on chain: the org decides
    (subject,) = check(replace(dispensed, subject_id=chain_key("rx", "RX-another")))
    assert subject[0] == "subject" and subject[1].startswith("subject mismatch: the record is about rx:")
    assert check(replace(consented, scope_digest="00" * 32))[0][0] == "scope"
    (org,) = check(replace(dispensed, org="pharmacy-2"))
    assert org == ("org", "org mismatch: the record is signed by pharmacy-1, the event's org is pharmacy-2")
    other = manifest.org("pharmacy-2").account
    (sender,) = check(replace(dispensed, sender=other))
    assert sender[0] == "sender" and f"{other} was an account of pharmacy-2" in sender[1]
    (nobody,) = check(replace(dispensed, sender=Account.create().address))
    assert nobody[0] == "sender" and "no organisation's account" in nobody[1]
    # One record, two calls: the second is the forgery (a record makes one contract call).
    again = replace(dispensed, block_number=dispensed.block_number + 1, tx_hash="0x" + "ab" * 32)
    assert [c for c, _ in check(dispensed, again)] == ["", "reused"]
    # What the gateway serves: another record's bundle, a bundle that does not verify, nothing yet.
    (swapped,) = check(dispensed, source=lambda _: documents[flows["rx.issue"]])
    assert swapped[0] == "bundle" and "served record" in swapped[1]
    sig = documents[flows["rx.issue"]]["signature"]
    (broken,) = check(dispensed, source=lambda d: documents[d] | {"signature": sig})
    assert broken[0] == "bundle" and broken[1].startswith("bundle fails at step signature")

    def pending(digest: str) -> Any:
        raise GatewayError(NOT_YET_LOGGED, "not yet", status=409)

    assert check(dispensed, source=pending)[0][0] == "record"

    def refused(digest: str) -> Any:
        raise GatewayError("TOKEN_INVALID", "bad token", status=401)

    with pytest.raises(GatewayError):  # not a finding about the event: the audit stops (exit 2)
        check(dispensed, source=refused)


def test_audit_workflow_bad_input_is_one_line_and_exit_2(
    devnet: Devnet, flows: dict[str, str], tmp_path: Path
) -> None:
    state, gateway, rpc = devnet
    base = ("provenance", "audit", "workflow", "--manifest", str(state / "manifest.json"))
    token = ("--token-file", str(state / "tokens" / "auditor.token"))
    closed = f"http://127.0.0.1:{free_port()}"
    bad_token = tmp_path / "bad.token"
    bad_token.write_text("not-a-token\n")
    cases = {
        "GATEWAY_UNREACHABLE": (*base, "--rpc", rpc, "--gateway", closed, *token),
        "LEDGER_ERROR": (*base, "--rpc", closed, "--gateway", gateway, *token),
        "FILE_UNREADABLE": (*base, "--rpc", rpc, "--gateway", gateway, "--token-file", str(tmp_path / "no")),
        "TOKEN_INVALID": (*base, "--rpc", rpc, "--gateway", gateway, "--token-file", str(bad_token)),
    }
    for code, args in cases.items():
        r = run(*args)
        assert r.returncode == 2, (code, r.stdout, r.stderr)
        assert f"[{code}]" in r.stderr and "Traceback" not in r.stderr, r.stderr
