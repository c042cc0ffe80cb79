"""A dataset's life through the real gateway: collected (registered in DataSharing), stored, opened,
derived under a consent, settled by both sides; each refusal with its own code and nothing kept."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
from web3 import Web3

from adapters._common import canonical_json
from adapters.sharing.lifecycle import content_root, file_in_dataset
from provenance.chain.contracts import at, chain_key
from provenance.crypto.sm3 import sm3_hex
from provenance.errors import ProofInvalid
from provenance.log.merkle import leaf_hash, root_and_inclusion_proofs
from tests.gateway.test_sharing import _another_data_owner
from tests.kit.data_life import (
    INPUT_LIFE,
    ROWS,
    collected,
    countersigned,
    derived,
    fresh,
    now,
    opened,
    record_life,
    settled,
    stored,
)
from tests.kit.gateway import (
    Harness,
    OrgClient,
    consented,
    error_code,
    share_access,
    share_request,
    trust_path,
    verify_bundle,
)

PROV_JSON_SCHEMA = json.loads((Path(__file__).parents[1] / "assets" / "prov-json-schema.json").read_text())


def _ok(client: OrgClient, kind: str, payload: dict[str, Any]) -> str:
    r = client.submit(kind, payload)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _refused(client: OrgClient, kind: str, payload: dict[str, Any], status: int, code: str) -> None:
    # Signed without the client's own adapt (it would refuse a malformed payload before sending it).
    digest = sm3_hex(canonical_json(payload))
    before = _subject_ids(client.harness, str(payload["dataset"]))
    r = client.submit(kind, payload, subject=f"dataset:{payload['dataset']}", payload_digest=digest)
    assert (r.status_code, error_code(r)) == (status, code), r.text
    assert _subject_ids(client.harness, str(payload["dataset"])) == before  # nothing kept


def _subject_ids(harness: Harness, dataset: str) -> set[str]:
    r = harness.client("auditor").get(f"/api/v1/subjects/dataset:{dataset}/records")
    assert r.status_code == 200, r.text
    return {i["id"] for i in r.json()["items"]}


def test_content_root_proves_a_row_belongs() -> None:
    """content_root is the SM3 RFC 9162 tree head over the rows: a row's inclusion proof verifies, a row
    not collected (or at another index) does not."""
    root, proofs = root_and_inclusion_proofs([leaf_hash(r) for r in ROWS])
    assert root.hex() == content_root(ROWS)
    file_in_dataset(ROWS[5], 5, len(ROWS), proofs[5], root.hex())
    for leaf, index in ((b"5,district-5,uninsured", 5), (ROWS[5], 6)):
        try:
            file_in_dataset(leaf, index, len(ROWS), proofs[5], root.hex())
        except ProofInvalid:
            continue
        raise AssertionError(f"a row not in the dataset verified: {leaf!r} at {index}")


def test_collected_stored_opened(harness: Harness) -> None:
    owner, user = harness.client("data-owner"), harness.client("data-user")
    dataset = fresh("survey")
    record_id = _ok(owner, "data.collected", collected(dataset))
    rec = harness.wait_chain(record_id)
    assert rec["chain_status"] == "confirmed", rec
    # The collection registered the dataset in DataSharing, its metadata digest the record's id.
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    sharing = at(w3, "DataSharing", harness.network.contracts["DataSharing"])
    ds = sharing.functions.datasetOf(chain_key("dataset", dataset)).call()
    assert bytes(ds[1]).hex() == record_id
    _refused(owner, "data.collected", collected(dataset), 409, "DATASET_EXISTS")
    _refused(owner, "data.collected", collected("health-stats"), 409, "DATASET_EXISTS")  # devnet's, on chain
    _refused(owner, "data.collected", collected(fresh("x"), owner="data-user"), 403, "ORG_MISMATCH")
    _refused(user, "data.collected", collected(fresh("x"), owner="data-user"), 403, "ROLE_FORBIDDEN")
    _refused(owner, "data.opened", opened(dataset), 409, "DATASET_NOT_STORED")
    _refused(user, "data.stored", stored(dataset), 403, "NOT_DATASET_OWNER")
    _refused(owner, "data.stored", stored(fresh("none")), 404, "DATASET_UNKNOWN")
    _ok(owner, "data.stored", stored(dataset, "important"))
    _refused(owner, "data.opened", opened(dataset), 403, "DATA_CLASS_FORBIDS")  # important: not public
    _refused(owner, "data.opened", opened(dataset, to=["data-user"]), 400, "SHARE_RULE_VIOLATION")
    _ok(owner, "data.opened", opened(dataset, public=False, to=["data-user"]))
    # Raised to core after an opening: the opening stands on record, so the classification is refused.
    _refused(owner, "data.stored", stored(dataset, "core"), 403, "DATA_CLASS_FORBIDS")
    core = fresh("core")
    _ok(owner, "data.collected", collected(core))
    _ok(owner, "data.stored", stored(core, "core"))
    _refused(owner, "data.opened", opened(core, public=False, to=["data-user"]), 403, "DATA_CLASS_FORBIDS")
    kinds = sorted(harness.record(i)["kind"] for i in _subject_ids(harness, dataset))
    assert kinds == ["data.collected", "data.opened", "data.stored"]  # nothing refused was kept


def _provenance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provenance", *args], capture_output=True, text=True, timeout=120
    )


def test_derived_under_consent_or_open(harness: Harness, tmp_path: Path) -> None:
    owner, user = harness.client("data-owner"), harness.client("data-user")
    request_id, _, _ = consented(harness)
    out = fresh("rates")
    covered = [{"dataset": "health-stats", "request_id": request_id}]
    _refused(user, "data.derived", derived(out, [{"dataset": "health-stats"}]), 403, "INPUT_NOT_COVERED")
    _refused(user, "data.derived", derived(out, covered, purpose="商业营销"), 403, "INPUT_NOT_COVERED")
    _refused(user, "data.derived", derived(out, [{"dataset": fresh("nope")}]), 404, "DERIVED_INPUT_UNKNOWN")
    _refused(user, "data.derived", derived(out, covered, analyst="data-owner"), 403, "ORG_MISMATCH")
    pending = fresh("REQ")
    _ok(user, "share.request", share_request(pending, "data-user"))
    no_consent = [{"dataset": "health-stats", "request_id": pending}]
    _refused(user, "data.derived", derived(out, no_consent), 409, "CONSENT_MISSING")
    # An open dataset needs no consent; the analysis may join it with the consented one.
    open_ds = fresh("open")
    collection = _ok(owner, "data.collected", collected(open_ds))
    _ok(owner, "data.stored", stored(open_ds))
    _ok(owner, "data.opened", opened(open_ds))
    record_id = _ok(user, "data.derived", derived(out, [*covered, {"dataset": open_ds}]))
    assert harness.record(record_id)["subject"] == f"dataset:{out}"
    _refused(user, "data.derived", derived(out, covered), 409, "DATASET_EXISTS")
    # Lineage: the analyst reads its output's inputs, the input's owner what its data was derived into.
    r = user.get(f"/api/v1/datasets/{out}/lineage")
    assert r.status_code == 200, r.text
    up = {n["dataset"]: (n["status"], n["owner"], n["depth"]) for n in r.json()["ancestors"]}
    assert up == {"health-stats": ("registered", "data-owner", 1), open_ds: ("collected", "data-owner", 1)}
    assert (r.json()["record"], r.json()["descendants"]) == (record_id, [])
    r = owner.get("/api/v1/datasets/health-stats/lineage")
    assert out in [n["dataset"] for n in r.json()["descendants"]], r.text
    r = harness.client("station-1").get(f"/api/v1/datasets/{out}/lineage")
    assert (r.status_code, error_code(r)) == (404, "DATASET_UNKNOWN")
    # The same lineage in PROV-JSON: the derivation used both inputs; every activity's record verifies.
    r = user.get(f"/api/v1/datasets/{out}/lineage/prov")
    assert r.status_code == 200, r.text
    prov = r.json()
    derivation = f"sc:record/{record_id}"
    assert prov["activity"][derivation] == {"prov:type": "sc:data.derived", "sc:record": record_id}
    sources = {d["prov:usedEntity"] for d in prov["wasDerivedFrom"].values()}
    assert sources == {"sc:dataset/health-stats", f"sc:dataset/{open_ds}"}
    assert all(d["prov:generatedEntity"] == f"sc:dataset/{out}" for d in prov["wasDerivedFrom"].values())
    assert {u["prov:activity"] for u in prov["used"].values()} == {derivation}
    assert set(prov["activity"]) == {derivation, f"sc:record/{collection}"}
    for activity in prov["activity"].values():
        harness.wait_status(activity["sc:record"], "anchored", timeout=60)
        bundle = harness.client("auditor").get(f"/api/v1/records/{activity['sc:record']}/bundle")
        verify_bundle(bundle.json(), harness)
    # The CLI prints the same document; a subject that is not a dataset is refused in one line.
    token_file = tmp_path / "data-user.token"
    token_file.write_text(harness.tokens["data-user"])
    cli = ("lineage", f"dataset:{out}", "--gateway", harness.server.url, "--token-file", str(token_file))
    r_cli = _provenance(*cli, "--format", "prov-json")
    assert r_cli.returncode == 0, r_cli.stderr
    assert json.loads(r_cli.stdout) == prov
    r_cli = _provenance("lineage", "rx:RX1", "--gateway", harness.server.url)
    assert r_cli.returncode == 2 and "lineage reads 'dataset:<id>'" in r_cli.stderr, r_cli.stderr
    # The analyst owns its output: it stores it; made under the consent, it is not opened.
    _ok(user, "data.stored", stored(out))
    _refused(user, "data.opened", opened(out), 409, "DATASET_CONSENT_BOUND")
    # Withdrawn consent: no further derivation under it.
    _ok(owner, "share.revoke_consent", {**_revoke(request_id)})
    _refused(user, "data.derived", derived(fresh("rates"), covered), 409, "CONSENT_REVOKED")


def _revoke(request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "dataset": "health-stats", "reason": "项目结束", "revoked_at": now()}


def test_settled_needs_both_sides(harness: Harness) -> None:
    owner, user = harness.client("data-owner"), harness.client("data-user")
    request_id, consent_digest, _ = consented(harness)
    start = now(-timedelta(minutes=1))
    for _ in range(2):
        _ok(user, "share.access", share_access(request_id, consent_digest, "data-user"))
    time.sleep(1.1)  # the period ends after the accesses (whole seconds)
    end = now()
    _refused(
        owner,
        "data.settled",
        settled(request_id, start, end, 2, amount=299),
        400,
        "SETTLEMENT_AMOUNT_MISMATCH",
    )
    _refused(owner, "data.settled", settled(request_id, start, end, 3), 409, "SETTLEMENT_METER_MISMATCH")
    _refused(owner, "data.settled", settled(fresh("REQ"), start, end, 2), 404, "SHARE_REQUEST_UNKNOWN")
    third = _another_data_owner(harness)
    _refused(third, "data.settled", settled(request_id, start, end, 2), 403, "SETTLEMENT_PARTY_MISMATCH")
    # The sixth attack (F6-4): the paying side proposed a low price (or nothing) and held the period pending.
    low = settled(request_id, start, end, 2, unit_price=1)
    _refused(user, "data.settled", low, 403, "SETTLEMENT_NOT_PROVIDER")
    _refused(user, "data.settled", settled(request_id, start, end, 0), 403, "SETTLEMENT_NOT_PROVIDER")
    # Ids compared without case: the request is named as it was made (its chain key is that spelling).
    lower = settled(request_id.lower(), start, end, 2)
    _refused(owner, "data.settled", lower, 404, "SHARE_REQUEST_UNKNOWN")
    _refused(
        user, "share.request", share_request(request_id.lower(), "data-user"), 409, "SHARE_REQUEST_EXISTS"
    )
    lower_access = share_access(request_id.lower(), consent_digest, "data-user")
    _refused(user, "share.access", lower_access, 409, "CONSENT_MISSING")
    wrong_side = settled(request_id, start, end, 2, provider=third.org)
    _refused(owner, "data.settled", wrong_side, 403, "SETTLEMENT_PARTY_MISMATCH")
    proposal = settled(request_id, start, end, 2)
    record_id = _ok(owner, "data.settled", proposal)
    digest = str(harness.record(record_id)["payload_digest"])
    again = settled(request_id, start, end, 2, settlement_id=proposal["settlement_id"])
    _refused(owner, "data.settled", again, 409, "SETTLEMENT_EXISTS")
    cased = {**again, "settlement_id": proposal["settlement_id"].lower()}
    _refused(owner, "data.settled", cased, 409, "SETTLEMENT_EXISTS")
    _refused(owner, "data.settled", settled(request_id, start, end, 2), 409, "SETTLEMENT_EXISTS")  # overlaps
    _refused(user, "data.countersigned", countersigned(cased, digest), 404, "SETTLEMENT_UNKNOWN")
    # Pending until the counterpart countersigns: not the proposer, not a third party, not other terms.
    _refused(owner, "data.countersigned", countersigned(proposal, digest), 403, "SETTLEMENT_PARTY_MISMATCH")
    _refused(third, "data.countersigned", countersigned(proposal, digest), 403, "SETTLEMENT_PARTY_MISMATCH")
    _refused(user, "data.countersigned", countersigned(proposal, "0" * 64), 409, "SETTLEMENT_TERMS_MISMATCH")
    unknown = countersigned({"settlement_id": fresh("SET")}, digest)
    _refused(user, "data.countersigned", unknown, 404, "SETTLEMENT_UNKNOWN")
    path = f"/api/v1/settlements/{proposal['settlement_id']}"
    r = user.get(path)
    assert (r.status_code, r.json()["status"], r.json()["amount"]) == (200, "pending", 300), r.text
    r = third.get(path)
    assert (r.status_code, error_code(r)) == (404, "SETTLEMENT_UNKNOWN")  # not a side: not even its price
    countersign_id = _ok(user, "data.countersigned", countersigned(proposal, digest))
    r = owner.get(path)
    assert (r.json()["status"], r.json()["countersigned"]) == ("settled", countersign_id), r.text
    _refused(user, "data.countersigned", countersigned(proposal, digest), 409, "SETTLEMENT_NOT_PENDING")


def _prov_export_verifies(harness: Harness, dataset: str, made_by: dict[str, str]) -> None:
    """The lineage's PROV-JSON validates against the W3C PROV-JSON schema (tests/assets), and each of its
    edges names a record whose bundle verifies offline and whose signed payload states that edge."""
    r = harness.client("data-user").get(f"/api/v1/datasets/{dataset}/lineage/prov")
    assert r.status_code == 200, r.text
    prov = r.json()
    jsonschema.Draft4Validator(PROV_JSON_SCHEMA, format_checker=None).validate(prov)
    bad = {**prov, "wasDerivedFrom": {"_:x": {"prov:usedEntity": "sc:dataset/a"}}}  # no generatedEntity
    assert not jsonschema.Draft4Validator(PROV_JSON_SCHEMA).is_valid(bad)
    auditor = harness.client("auditor")
    payloads: dict[str, dict[str, Any]] = {}
    edges = [
        (rel, st)
        for rel in ("wasGeneratedBy", "used", "wasDerivedFrom", "wasAttributedTo", "wasAssociatedWith")
        for st in prov[rel].values()
    ]
    assert {rel for rel, _ in edges} == {
        "wasGeneratedBy",
        "used",
        "wasDerivedFrom",
        "wasAttributedTo",
        "wasAssociatedWith",
    }
    for rel, statement in edges:
        record_id = statement["sc:record"]
        if record_id not in payloads:
            bundle = auditor.get(f"/api/v1/records/{record_id}/bundle").json()
            verify_bundle(bundle, harness)
            payloads[record_id] = {
                "kind": bundle["record"]["kind"],
                "org": bundle["record"]["org"],
                **bundle["payload"],
            }
        facts = payloads[record_id]
        made = facts["dataset"]
        assert made_by[made] == record_id
        entity = statement.get("prov:entity") or statement.get("prov:generatedEntity")
        if rel == "used" or rel == "wasDerivedFrom":
            used = (
                statement.get("prov:entity") if rel == "used" else statement["prov:usedEntity"]
            ).removeprefix("sc:dataset/")
            assert used in [i["dataset"] for i in facts["inputs"]], (rel, statement)
            if rel == "wasDerivedFrom":
                assert entity == f"sc:dataset/{made}"
        elif rel in ("wasGeneratedBy", "wasAttributedTo"):
            assert entity == f"sc:dataset/{made}", (rel, statement)
        if "prov:agent" in statement:
            assert statement["prov:agent"] == f"sc:org/{facts['org']}"
    assert set(payloads) == set(made_by.values())


def test_a_datasets_whole_life_verifies_offline(harness: Harness, tmp_path: Path) -> None:
    """The issue's acceptance path: collected, stored, shared under a consent, accessed, used in an
    analysis whose output is stored, the period settled by both sides, the dataset opened; every record's
    bundle verifies with the pinned keys and the anchor on chain, and ``provenance trace`` verifies the
    dataset's life."""
    life = record_life(harness)
    dataset, out, ids, proposal, digest = life.dataset, life.out, life.ids, life.proposal, life.digest
    auditor = harness.client("auditor")
    for rid in ids:
        harness.wait_status(rid, "anchored", timeout=60)
        verify_bundle(auditor.get(f"/api/v1/records/{rid}/bundle").json(), harness)
    assert auditor.get(f"/api/v1/settlements/{proposal['settlement_id']}").json()["status"] == "settled"
    # What several organisations agree on is held by DataSharing too: every call confirmed, the derived
    # dataset registered as the analyst's, the settlement countersigned there.
    for rid in ids:
        if harness.record(rid)["kind"] == "data.stored":  # the owner's own choice: no contract call
            assert harness.record(rid)["chain_status"] == "none"
            continue
        assert harness.wait_chain(rid)["chain_status"] == "confirmed", harness.record(rid)
    sharing = at(
        Web3(Web3.HTTPProvider(harness.network.rpc_url)),
        "DataSharing",
        harness.network.contracts["DataSharing"],
    )
    owner_of_out = sharing.functions.datasetOf(chain_key("dataset", out)).call()
    assert (owner_of_out[0].rstrip(b"\0"), bytes(owner_of_out[1]).hex()) == (b"data-user", ids[5])
    held = sharing.functions.settlementOf(chain_key("settlement", proposal["settlement_id"])).call()
    assert (held[0], held[4].hex(), held[6]) == (2, digest, proposal["amount"])  # settled, its terms
    _prov_export_verifies(harness, out, {dataset: ids[0], out: ids[5]})
    # The audit matches each of these contract events to the signed record its digest names.
    token_file = tmp_path / "auditor.token"
    token_file.write_text(harness.tokens["auditor"])
    audit = _provenance(
        "audit",
        "workflow",
        "--rpc",
        harness.network.rpc_url,
        "--gateway",
        harness.server.url,
        "--token-file",
        str(token_file),
        "--manifest",
        str(harness.network.path),
        "--json",
    )
    results = {r["digest"]: r for r in json.loads(audit.stdout)["results"] if r["digest"] in ids}
    assert {(r["event"], r["record"]["kind"]) for r in results.values() if r["record"]} >= {
        ("DatasetDerived", "data.derived"),
        ("DatasetOpened", "data.opened"),
        ("SettlementProposed", "data.settled"),
        ("SettlementCountersigned", "data.countersigned"),
    }, audit.stdout[-2000:]
    assert all(r["ok"] for r in results.values()), [r for r in results.values() if not r["ok"]]
    token_file = tmp_path / "auditor.token"
    token_file.write_text(harness.tokens["auditor"])
    traced = _provenance(
        "trace",
        f"dataset:{dataset}",
        "--gateway",
        harness.server.url,
        "--token-file",
        str(token_file),
        "--rpc",
        harness.network.rpc_url,
        "--trust",  # pins the chain's sealing keys: the anchor is proven, not an endpoint's word
        str(trust_path(harness.network)),
        "--json",
    )
    assert traced.returncode == 0, traced.stderr
    doc = json.loads(traced.stdout)
    records = doc["records"]
    assert [r["kind"] for r in records] == list(INPUT_LIFE)
    assert all(r["ok"] and r["steps"]["anchor"] == "passed" for r in records)
    # Its whole life includes where it went: the analysis output downstream, named by its record.
    assert doc["lineage"]["upstream"] == []
    assert [(n["dataset"], n["record"]) for n in doc["lineage"]["downstream"]] == [(out, ids[5])]
    traced = _provenance(
        "trace", f"dataset:{out}", "--gateway", harness.server.url, "--token-file", str(token_file), "--json"
    )
    assert traced.returncode == 0, traced.stderr
    lineage = json.loads(traced.stdout)["lineage"]
    assert [(n["dataset"], n["depth"]) for n in lineage["upstream"]] == [(dataset, 1)]
    assert lineage["downstream"] == []
