"""The log's guarantees through the API: outage backs up and drains, restart loses and duplicates nothing,
checkpoints are consistent, stored payloads are tamper-evident and purgeable; ops endpoints answer."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
from sqlmodel import select

from gateway.core.db import Database
from gateway.models import DataKey, Record, RecordPayload
from provenance.domains import kinds_document
from provenance.log.bundle import envelope_schema
from provenance.log.merkle import verify_consistency
from tests.kit.gateway import (
    Harness,
    error_code,
    hj212_packets,
    rx_issue,
    share_request,
    verify_bundle,
    workerless_gateway,
)


def _submit_readings(harness: Harness, n: int) -> list[str]:
    station = harness.client("station-1")
    ids = []
    for p in hj212_packets(n):
        r = station.submit("env.reading", p)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


def test_chain_outage_backs_up_and_drains(harness: Harness) -> None:
    first = _submit_readings(harness, 1)  # the station's keys are known before the outage
    harness.record(first[0])  # and the auditor's, who reads the records below (alone, the test needs it)
    harness.relay.down()
    try:
        ids = _submit_readings(harness, 5)  # acceptance needs no chain: keys are cached
        harness.wait(lambda: not harness.http.get("/healthz").json()["chain_up"], what="chain seen down")
        rec = harness.wait_status(ids[-1], "sequenced")
        assert rec["status"] == "sequenced"
        assert harness.http.get("/healthz").json()["backlog"] >= 5
    finally:
        harness.relay.up()
    harness.wait_status(ids[-1], "anchored", timeout=30)
    assert harness.http.get("/healthz").json()["chain_up"]


def test_workflow_checks_during_chain_outage_answer_503(harness: Harness) -> None:
    """Checks that must read the chain cannot be made: retry later (503 + Retry-After), never a 502."""
    h, user = harness.client("hospital-1"), harness.client("data-user")
    assert h.submit("rx.issue", rx_issue("RX" + _rand())).status_code == 202  # org keys cached
    assert user.submit("share.request", share_request("SR" + _rand(), "data-user")).status_code == 202
    harness.relay.down()
    try:
        r = h.submit("rx.issue", rx_issue("RX" + _rand()))
        assert r.status_code == 503 and error_code(r) == "CHAIN_UNAVAILABLE", r.text
        assert int(r.headers["Retry-After"]) >= 1
        r = user.submit("share.request", share_request("SR" + _rand(), "data-user"))
        assert r.status_code == 503 and error_code(r) == "CHAIN_UNAVAILABLE", r.text
        bulk = harness.http.post(
            "/api/v1/records:bulk",
            json={"records": [h.body("rx.issue", rx_issue("RX" + _rand()))]},
            headers=h.headers,
        ).json()
        assert bulk["items"][0]["error"]["code"] == "CHAIN_UNAVAILABLE"
        r = h.get("/api/v1/rx/RX-NOT-LOCAL/check")  # a read that needs the chain
        assert r.status_code == 503 and error_code(r) == "CHAIN_UNAVAILABLE" and "Retry-After" in r.headers
    finally:
        harness.relay.up()
    assert h.submit("rx.issue", rx_issue("RX" + _rand())).status_code == 202


def test_restart_neither_loses_nor_duplicates(harness: Harness) -> None:
    before = _submit_readings(harness, 20)
    harness.restart()
    after = _submit_readings(harness, 5)
    harness.wait_status(after[-1], "anchored", timeout=30)
    db = Database(harness.settings.database_url)
    try:
        with db.session() as s:
            leaves = s.exec(select(Record.leaf_index)).all()
            ours = s.exec(select(Record).where(Record.id.in_(before + after))).all()  # type: ignore[attr-defined]
    finally:
        db.dispose()
    assert len(ours) == 25 and all(r.leaf_index is not None for r in ours)
    assert sorted(i for i in leaves if i is not None) == list(range(len(leaves)))


def test_checkpoints_are_consistent(harness: Harness) -> None:
    first = harness.http.get("/api/v1/checkpoints/latest").json()
    ids = _submit_readings(harness, 3)
    harness.wait_status(ids[-1], "anchored")
    second = harness.http.get("/api/v1/checkpoints/latest").json()
    assert second["size"] > first["size"] and second["anchor"] is not None
    assert harness.http.get(f"/api/v1/checkpoints/{first['size']}").json()["note"] == first["note"]
    proof = harness.http.get(
        "/api/v1/proofs/consistency", params={"first": first["size"], "second": second["size"]}
    ).json()
    verify_consistency(
        first["size"],
        second["size"],
        bytes.fromhex(first["root"][2:]),
        bytes.fromhex(second["root"][2:]),
        [base64.b64decode(h) for h in proof["proof"]],
    )
    r = harness.http.get("/api/v1/proofs/consistency", params={"first": 5, "second": 10**12})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    r = harness.http.get("/api/v1/checkpoints/999999999")
    assert r.status_code == 404


def test_payload_tampered_in_storage_is_detected_and_purge_keeps_proofs(harness: Harness) -> None:
    h = harness.client("hospital-1")
    ids = []
    for _ in range(2):
        r = h.submit("rx.issue", rx_issue("RX" + _rand()))
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    harness.wait_status(ids[-1], "anchored")
    tampered, purged = ids
    db = Database(harness.settings.database_url)
    try:
        with db.write() as s:
            row = s.get(RecordPayload, tampered)
            assert row is not None
            blob = bytearray(row.ciphertext)
            blob[20] ^= 0x01
            row.ciphertext = bytes(blob)
            s.add(row)
            key = s.get(DataKey, purged)
            assert key is not None
            s.delete(key)
    finally:
        db.dispose()
    r = h.get(f"/api/v1/records/{tampered}/bundle")
    assert r.status_code == 500 and error_code(r) == "PAYLOAD_CORRUPT"
    r = h.get(f"/api/v1/records/{purged}/bundle")
    assert r.status_code == 200 and "payload" not in r.json()
    verify_bundle(r.json(), harness)  # digest, signature and proofs hold without the payload


def test_bundle_of_a_record_not_yet_logged(harness: Harness, tmp_path: Path) -> None:
    """Accepted but not yet sequenced (here on a gateway whose workers are off): no bundle yet, 409
    NOT_YET_LOGGED (retry shortly); the record reads as accepted without a leaf; exports leave it out."""
    station = harness.client("station-1")
    with workerless_gateway(harness, tmp_path, "station-1") as (_, http):
        r = http.post("/api/v1/records", json=station.body("env.reading", hj212_packets(1)[0]))
        assert r.status_code == 202, r.text
        rid = r.json()["id"]
        rec = http.get(f"/api/v1/records/{rid}").json()
        assert (rec["status"], rec["leaf_index"]) == ("accepted", None), rec
        bundle = http.get(f"/api/v1/records/{rid}/bundle")
        assert bundle.status_code == 409 and error_code(bundle) == "NOT_YET_LOGGED", bundle.text
        assert bundle.json()["error"]["details"] == {"id": rid}
        export = http.get("/api/v1/bundles").json()
        assert (export["items"], export["total"]) == ([], 0), export


def test_ops_endpoints(harness: Harness) -> None:
    health = harness.http.get("/healthz").json()
    assert health["status"] == "ok" and health["tree_size"] >= 0
    metrics = harness.client("log-operator").get(
        "/metrics"
    )  # not public (tests/security/test_read_matrix.py)
    assert metrics.status_code == 200 and "prov_gw_tree_size" in metrics.text
    assert "prov_gw_records_rejected_total" in metrics.text
    spec = harness.http.get("/openapi.json").json()
    assert "/api/v1/records" in spec["paths"] and "/api/v1/records:bulk" in spec["paths"]
    for path in ("/api/v1/records", "/api/v1/records:bulk"):
        submit = spec["paths"][path]["post"]["responses"]
        for status in ("400", "401", "403", "409", "413", "422", "503", "507"):
            ref = submit[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorResponse"), (path, status, ref)
    # Generated clients see what an envelope must hold (the bundle schema's record) and the bulk bounds.
    schemas = spec["components"]["schemas"]
    assert schemas["RecordSubmit"]["properties"]["record"]["properties"] == envelope_schema()["properties"]
    assert schemas["RecordSubmit"]["properties"]["record"]["additionalProperties"] is False
    assert schemas["BulkSubmit"]["properties"]["records"]["minItems"] == 1
    assert harness.http.get("/docs").status_code == 200
    orgs = harness.http.get("/api/v1/orgs").json()
    roles = {o["id"]: o["role"] for o in orgs["orgs"]}
    assert roles["hospital-1"] == "hospital" and roles["log-operator"] == "log_operator"
    page = harness.http.get("/verify/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    r = harness.http.get("/api/v1/nope")
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"


def _rand() -> str:
    import secrets

    return secrets.token_hex(5).upper()


def test_chain_endpoint_tells_the_page_where_to_look(harness: Harness) -> None:
    """GET /api/v1/chain is public (no token) and names the node and contracts the /verify page reads."""
    r = httpx.get(f"{harness.server.url}/api/v1/chain")
    assert r.status_code == 200
    info, net = r.json(), harness.network
    assert info["rpc_url"] == (harness.settings.rpc_url or net.rpc_url)
    assert info["chain_id"] == net.chain_id
    assert info["provenance_log"].lower() == net.contract("ProvenanceLog").lower()
    assert info["org_registry"].lower() == net.contract("OrgRegistry").lower()
    assert info["kinds"] == kinds_document()
