"""Issue #23, the second (unbriefed) attack on the running devnet: its gateway, adapter and contract-mirror
findings 1, 2, 5, 6, 7 and 8 (``ATTACK-GW-REPORT.md``), each replayed through the real HTTP API against the
gateway suite's network (embedded node, contracts, demo organisations, real SM2 keys) and refused with its
specific code; what was accepted keeps the invariant of ``tests.kit.gateway.check_accepted``.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select
from web3 import Web3

from adapters import AdaptContext
from adapters._common import pseudonym
from adapters.rx import MAX_VALIDITY
from adapters.sharing import MAX_CONSENT
from gateway.core.db import Database
from gateway.core.kek import PSEUDONYM_KEY_LABEL, read_kek
from gateway.core.security import mint_token
from gateway.models import Record
from provenance.access_code import HEADER, AccessCode
from provenance.chain.contracts import at
from provenance.client import Client
from provenance.crypto import sm3_hex
from provenance.errors import ProvenanceError
from provenance.log.tiles import Tile, decode_bundle
from provenance.records import digest_of
from tests.kit.gateway import (
    STATION_1_MN,
    Harness,
    OrgClient,
    accepted,
    accepted_since,
    check_accepted,
    hand_over,
    hj212_packets,
    iso_second,
    kit_code,
    new_rx_id,
    party_meeting,
    refused,
    rx_dispense,
    rx_issue,
    rx_revoke,
    share_consent,
    share_request,
    workerless_gateway,
)

OVERSIGHT = {"auditor", "regulator", "log-operator"}


def _raw(client: OrgClient, kind: str, subject: str, payload: Any) -> dict[str, Any]:
    """A body signed as given, for payloads the client-side adapter would refuse to canonicalise."""
    return client.body(kind, payload, subject=subject, payload_digest=digest_of(payload))


# --- finding 1: a pharmacy without the code learnt a prescription from the write path, then dispensed it --


def _secret_prescription(rx: str, code: AccessCode) -> dict[str, Any]:
    """The report's prescription B: secret-drug-B for Patient/bob, 2 盒."""
    payload = rx_issue(rx, access_code=code)
    payload["subject"]["reference"] = "Patient/bob"
    payload["medicationCodeableConcept"] = {"text": "secret-drug-B"}
    return code.attach(payload, rx)


def _guess(rx: str, *, patient: str = "Patient/bob", drug: str = "secret-drug-B", qty: int = 2) -> Any:
    payload = rx_dispense(rx)
    payload["subject"]["reference"] = patient
    payload["medicationCodeableConcept"] = {"text": drug}
    return hand_over(payload, qty)


def test_dispense_oracle_and_codeless_dispense(harness: Harness) -> None:
    """pharmacy-2, never shown the slip, submitted wrong dispenses: the refusals told it field by field
    whether the prescription was for Patient/bob, then its drug, unit and quantity (in the details), and
    a matching dispense got 202; RX_ALREADY_DISPENSED named the dispenser to any pharmacy. A dispense now
    presents the slip's code, checked before anything about the prescription: without it every guess,
    for an existing prescription or none, gets the same answer and nothing is accepted; refusals never
    carry what was prescribed; the dispenser is named to the issuer only."""
    started = time.time()
    hospital, intruder, pharmacy = (harness.client(o) for o in ("hospital-2", "pharmacy-2", "pharmacy-1"))
    rx, ghost, code = new_rx_id(), new_rx_id(), AccessCode.new()
    issue_id = accepted(hospital.submit("rx.issue", _secret_prescription(rx, code)))
    answers: list[httpx.Response] = []
    for target in (rx, ghost):  # the same answers whether the prescription exists or not
        for patient in ("Patient/alice", "Patient/bob"):
            for presented, expected in (
                (None, "ACCESS_CODE_REQUIRED"),
                (AccessCode.new(), "ACCESS_CODE_INVALID"),
            ):
                r = intruder.submit("rx.dispense", _guess(target, patient=patient), access_code=presented)
                assert refused(r, 403, expected) == {"subject": f"rx:{target}"}
                answers.append(r)
        r = intruder.submit("rx.dispense", _guess(target), access_code="not a code")
        refused(r, 400, "ACCESS_CODE_MALFORMED")
    for r in answers:
        text = json.dumps(r.json(), ensure_ascii=False)
        assert not [
            w for w in ("secret-drug", "Patient/bob", "盒", "hospital-2", "prescribed") if w in text
        ], text
    # In a bulk request too: an item without the code, or with another, is refused on its own.
    items = [intruder.body("rx.dispense", _guess(rx)), {**intruder.body("rx.dispense", _guess(rx)),
             "access_code": str(AccessCode.new())}]  # fmt: skip
    bulk = harness.http.post("/api/v1/records:bulk", json={"records": items}, headers=intruder.headers)
    assert [it["error"]["code"] for it in bulk.json()["items"]] == [
        "ACCESS_CODE_REQUIRED",
        "ACCESS_CODE_INVALID",
    ]
    assert accepted_since(harness, started) == [issue_id]  # not one guess got in

    # The pharmacy the patient shows the slip to: mismatches name the field, never the prescribed value.
    for payload, field in (
        (_guess(rx, patient="Patient/alice"), "subject.reference"),
        (_guess(rx, drug="other-drug"), "medication[x]"),
        (_guess(rx, qty=3), "quantity.value"),
    ):
        r = pharmacy.submit("rx.dispense", payload, access_code=code)
        assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": field}
    body = {
        **pharmacy.body("rx.dispense", _guess(rx)),
        "access_code": str(code).lower(),
    }  # typed from the slip
    bulk = harness.http.post("/api/v1/records:bulk", json={"records": [body]}, headers=pharmacy.headers)
    dispense_id = bulk.json()["items"][0]["id"]
    assert bulk.json()["items"][0]["status"] == "accepted", bulk.text
    assert "access_code" not in json.dumps(harness.record(dispense_id))  # beside the record, never in it

    # Closed: another pharmacy shown the slip learns that, not by whom; the issuer learns by whom;
    # another hospital learns neither (nor who issued it).
    r = intruder.submit("rx.dispense", _guess(rx), access_code=code)
    assert refused(r, 409, "RX_ALREADY_DISPENSED") == {"rx_id": rx}
    r = hospital.submit("rx.revoke", rx_revoke(rx))
    assert refused(r, 409, "RX_ALREADY_DISPENSED")["dispensed_by"] == "pharmacy-1"
    r = harness.client("hospital-1").submit("rx.revoke", rx_revoke(rx))
    assert refused(r, 403, "RX_NOT_ISSUER") == {"rx_id": rx}
    assert harness.wait_chain(dispense_id)["chain_status"] == "confirmed"
    check_accepted(harness, accepted_since(harness, started))


def test_an_issue_carries_the_codes_digest(harness: Harness) -> None:
    """Without the digest no pharmacy could read or dispense a prescription: the issue is refused
    (ACCESS_CODE_DIGEST_MISSING), and the SDK's ``sign`` refuses to make one."""
    hospital, rx = harness.client("hospital-1"), new_rx_id()
    bare = rx_issue(rx)
    bare.pop("extension")
    r = hospital.post(_raw(hospital, "rx.issue", f"rx:{rx}", bare))
    assert refused(r, 400, "ACCESS_CODE_DIGEST_MISSING")["field"] == "extension"
    sdk = Client(base_url=harness.server.url, org="hospital-1", signer=harness.network.sm2_key("hospital-1"))
    with sdk, pytest.raises(ProvenanceError) as e:
        sdk.sign(kind="rx.issue", subject=f"rx:{rx}", payload=bare)
    assert e.value.code == "ACCESS_CODE_DIGEST_MISSING"


def test_patient_reference_digest_is_keyed(harness: Harness) -> None:
    """Facts held an unsalted SM3 of the patient reference ("Patient/bob"): whoever reads the facts (a
    dump of the database, where facts are in clear beside the encrypted payloads) confirms a guess. Facts
    now hold HMAC-SM3 under a key derived from the KEK, which lives in its file, never in the database."""
    rx, code = new_rx_id(), AccessCode.new()
    issue_id = accepted(harness.client("hospital-2").submit("rx.issue", _secret_prescription(rx, code)))
    db = Database(harness.settings.database_url)
    try:
        with db.session() as s:
            facts = s.exec(select(Record.facts).where(Record.id == issue_id)).one()
            dump = json.dumps([list(row) for row in s.exec(select(Record.id, Record.facts)).all()])
    finally:
        db.dispose()
    plain = sm3_hex(b"Patient/bob")
    assert plain not in dump and "Patient/bob" not in dump and "patient_ref_digest" not in json.dumps(facts)
    kek = read_kek(harness.settings.kek_path)
    assert kek is not None
    keyed = pseudonym(
        AdaptContext(pseudonym_key=kek.derive(PSEUDONYM_KEY_LABEL)), "patient-ref", "Patient/bob"
    )
    assert facts["patient_ref_hmac"] == keyed
    # Oversight reads the facts through the check; they name the patient only by the keyed digest.
    check = harness.client("auditor").get(f"/api/v1/rx/{rx}/check").json()
    assert check["facts"]["patient_ref_hmac"] == keyed and plain not in json.dumps(check)


# --- finding 2: the tiles' entry bundles gave every envelope to anyone --------------------------------


def test_tiles_entry_bundles_need_an_oversight_token(harness: Harness, tmp_path: Path) -> None:
    """``/tiles/tile/entries/…`` served every signed envelope (organisation, kind, ``rx:<id>``…) without
    a token, while the read matrix answers other organisations 404 for the same records. Entry bundles now
    answer auditors, regulators, log operators and the monitor token; the checkpoint and the hash tiles
    (hashes and a signed size) stay public for witnesses and verifiers."""
    rx = new_rx_id()
    rid = accepted(harness.client("hospital-1").submit("rx.issue", rx_issue(rx)))
    harness.wait_status(rid, "anchored", timeout=60)
    leaf = harness.record(rid)["leaf_index"]
    harness.wait(
        lambda: int(harness.http.get("/tiles/checkpoint").text.split("\n")[1]) > leaf, what="a checkpoint"
    )
    size = int(harness.http.get("/tiles/checkpoint").text.split("\n")[1])
    n = leaf // 256
    width = min(size - n * 256, 256)
    hashes = harness.http.get(f"/tiles/{Tile(level=0, n=n, w=width).path()}")
    assert hashes.status_code == 200 and hashes.headers["cache-control"].startswith("public")
    entries = f"/tiles/{Tile(level=-1, n=n, w=width).path()}"
    refused(harness.http.get(entries), 401, "AUTH_REQUIRED")
    refused(harness.http.get(entries, headers={"Authorization": "Bearer spt_0.nope"}), 401, "TOKEN_INVALID")
    assert set(harness.tokens) > OVERSIGHT and "pharmacy-2" in harness.tokens
    for reader, token in harness.tokens.items():
        r = harness.http.get(entries, headers={"Authorization": f"Bearer {token}"})
        if reader in OVERSIGHT:
            assert r.status_code == 200, (reader, r.text)
            assert r.headers["cache-control"] == "private, max-age=31536000, immutable"
            assert any(f'"rx:{rx}"'.encode() in e for e in decode_bundle(Tile(-1, n, width), r.content))
        else:
            refused(r, 403, "ROLE_FORBIDDEN")
    # The monitor token of the settings (PROV_GW_MONITOR_TOKEN) passes the same gate and nothing else.
    monitor = secrets.token_urlsafe(32)
    with workerless_gateway(harness, tmp_path, "station-1", monitor_token=monitor) as (_, http):
        path = f"/tiles/{Tile(level=-1, n=0, w=1).path()}"
        assert http.get(path).status_code == 403  # station-1's own token
        r = http.get(path, headers={"Authorization": f"Bearer {monitor}"})
        refused(r, 404, "NOT_FOUND")  # past the gate: this gateway has signed no checkpoint
        r = http.get("/api/v1/bundles", headers={"Authorization": f"Bearer {monitor}"})
        refused(r, 401, "TOKEN_INVALID")


# --- finding 5: a 202 for a prescription the chain then refused ---------------------------------------


def _contract(harness: Harness, name: str) -> Any:
    return at(Web3(Web3.HTTPProvider(harness.network.rpc_url)), name, harness.network.contracts[name])


def test_intake_mirrors_contract_bounds(harness: Harness, tmp_path: Path) -> None:
    """An issue expiring more than 366 days out got 202, then the chain refused it (ExpiryTooFar), and a
    dispense of it got 202 too (then RxNotFound). Intake now applies the contracts' bounds against the
    chain's clock, with the chain's codes (the constants are read back from the deployed contracts), and a
    prescription whose issue the chain refused is closed to dispenses and shows so in its check."""
    started = time.time()
    assert _contract(harness, "Prescriptions").functions.MAX_VALIDITY().call() == MAX_VALIDITY.total_seconds()
    assert _contract(harness, "DataSharing").functions.MAX_CONSENT().call() == MAX_CONSENT.total_seconds()
    hospital = harness.client("hospital-1")
    r = hospital.submit("rx.issue", rx_issue(new_rx_id(), valid_for=MAX_VALIDITY + timedelta(days=1)))
    assert set(refused(r, 400, "EXPIRY_TOO_FAR")) == {"field", "expires_at", "chain_time", "latest_allowed"}
    ok = accepted(
        hospital.submit("rx.issue", rx_issue(new_rx_id(), valid_for=MAX_VALIDITY - timedelta(days=1)))
    )
    user, owner = harness.client("data-user"), harness.client("data-owner")
    request_id = "REQ-" + secrets.token_hex(4)
    accepted(user.submit("share.request", share_request(request_id, "data-user")))
    far = share_consent(request_id, valid_for=MAX_CONSENT + timedelta(days=2))
    refused(owner.submit("share.consent", far), 400, "EXPIRY_TOO_FAR")
    consent = accepted(
        owner.submit("share.consent", share_consent(request_id, valid_for=4 * 365 * timedelta(days=1)))
    )
    for rid in (ok, consent):
        assert harness.wait_chain(rid)["chain_status"] == "confirmed"
    check_accepted(harness, accepted_since(harness, started))

    # An issue the chain refused (the state its chain caller leaves after a revert; a gateway without
    # workers never sent it): the check says so, a dispense is refused before it could be accepted.
    with workerless_gateway(harness, tmp_path, "hospital-1") as (settings, http):
        db = Database(settings.database_url)
        try:
            pharmacy_token = mint_token(db, "pharmacy-1", label="test")
            rx = new_rx_id()
            issue = hospital.body("rx.issue", rx_issue(rx))
            rid = accepted(http.post("/api/v1/records", json=issue))
            with db.write() as s:
                row = s.exec(select(Record).where(Record.id == rid)).one()
                row.chain_status, row.chain_error = "rejected", "ExpiryTooFar"
                s.add(row)
        finally:
            db.dispose()
        code = str(kit_code(rx))  # the code rx_issue attached
        check = http.get(f"/api/v1/rx/{rx}/check").json()
        assert check["status"] == "rejected" and not check["valid"]
        dispense = harness.client("pharmacy-1").body("rx.dispense", rx_dispense(rx))
        headers = {"Authorization": f"Bearer {pharmacy_token}", HEADER: code}
        r = http.post("/api/v1/records", json=dispense, headers=headers)
        assert refused(r, 404, "RX_UNKNOWN")["chain_status"] == "rejected"


# --- finding 6: dates declared in payloads were trusted ----------------------------------------------


def test_payload_dates_bounded_by_the_clock(harness: Harness) -> None:
    """A prescription valid next month was dispensed today with ``whenHandedOver`` inside its validity
    period (202, confirmed on chain); ``authoredOn`` in 2030 and ``requested_at`` in 2030 were accepted.
    Every date a payload declares as past now lies before the gateway's clock plus ``max_clock_skew``
    (DATE_IN_FUTURE), and the validity rule reads ``whenHandedOver`` only after that."""
    started = time.time()
    now = datetime.now(UTC)
    hospital, pharmacy = harness.client("hospital-1"), harness.client("pharmacy-1")
    rx = new_rx_id()
    later = rx_issue(rx)
    later["dispenseRequest"]["validityPeriod"] = {
        "start": iso_second(now + timedelta(days=30)),
        "end": iso_second(now + timedelta(days=37)),
    }
    accepted(hospital.submit("rx.issue", later))
    handed = rx_dispense(rx)
    handed["whenHandedOver"] = iso_second(now + timedelta(days=31))
    assert refused(pharmacy.submit("rx.dispense", handed), 400, "DATE_IN_FUTURE")["field"] == "whenHandedOver"
    r = pharmacy.submit("rx.dispense", rx_dispense(rx))  # handed over now: before its validity
    assert refused(r, 400, "RX_RULE_VIOLATION")["field"] == "whenHandedOver"
    authored = rx_issue(new_rx_id())
    authored["authoredOn"] = "2030-01-01T00:00:00Z"
    assert refused(hospital.submit("rx.issue", authored), 400, "DATE_IN_FUTURE")["field"] == "authoredOn"
    revoke = rx_revoke(rx) | {"revoked_at": "2030-01-01T00:00:00Z"}
    assert refused(hospital.submit("rx.revoke", revoke), 400, "DATE_IN_FUTURE")["field"] == "revoked_at"
    user, owner = harness.client("data-user"), harness.client("data-owner")
    request_id = "REQ-" + secrets.token_hex(4)
    request = share_request(request_id, "data-user") | {"requested_at": "2030-01-01T00:00:00Z"}
    assert refused(user.submit("share.request", request), 400, "DATE_IN_FUTURE")["field"] == "requested_at"
    accepted(user.submit("share.request", share_request(request_id, "data-user")))
    consent = share_consent(request_id) | {"granted_at": iso_second(now + timedelta(days=1))}
    assert refused(owner.submit("share.consent", consent), 400, "DATE_IN_FUTURE")["field"] == "granted_at"
    meeting = party_meeting("party-branch", "M" + secrets.token_hex(4)) | {"held_at": "2030-01-01T00:00:00Z"}
    r = harness.client("party-branch").submit("party.record", meeting)
    assert refused(r, 400, "DATE_IN_FUTURE")["field"] == "held_at"
    check_accepted(harness, accepted_since(harness, started))


# --- finding 7: a coded medication against a text-only prescription ------------------------------------


def test_coded_medication_against_text_only_prescription(harness: Harness) -> None:
    """{"text": "amoxicillin"} dispensed as RxNorm 7052 (morphine) with the text "amoxicillin": 202 and
    confirmed, because codes were compared only when both sides were coded. Medications now match in
    normal form: a code never matches mere text; text matches text (case and spacing aside)."""
    started = time.time()
    rx = new_rx_id()
    issue = rx_issue(rx)
    issue["medicationCodeableConcept"] = {"text": "amoxicillin"}
    accepted(harness.client("hospital-1").submit("rx.issue", issue))
    pharmacy = harness.client("pharmacy-1")
    morphine = rx_dispense(rx)
    morphine["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7052"}],
        "text": "amoxicillin",
    }
    r = pharmacy.submit("rx.dispense", morphine)
    assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": "medication[x]"}
    same = rx_dispense(rx)
    same["medicationCodeableConcept"] = {"text": "  Amoxicillin "}
    assert harness.wait_chain(accepted(pharmacy.submit("rx.dispense", same)))["chain_status"] == "confirmed"
    check_accepted(harness, accepted_since(harness, started))


# --- finding 8: weird values ---------------------------------------------------------------------------


def test_weird_values_refused(harness: Harness) -> None:
    """HJ 212 readings with rtd "NaN" or "1e999", or with no pollutant value, were accepted, and the
    station's password (PW) was stored in the signed payload; quantities of 1e300 or 1e-300 were
    accepted. Values are finite decimals in the standard's field names, a reading carries a measured
    value, PW is not part of the normal form (docs/formats.md), quantities lie in 0 < q ≤ 10^6 with at
    most 3 decimals."""
    started = time.time()
    station = harness.client("station-1")
    base = {"mn": STATION_1_MN, "st": "31", "cn": "2011", "data_time": "20261125093000"}
    for pollutants in (
        {"a21026": {"rtd": "NaN", "Flag": "N"}},
        {"a21026": {"Rtd": "NaN"}},
        {"a21026": {"Rtd": "1e999"}},
        {"a21026": {"Rtd": "Infinity"}},
    ):
        reading = {**base, "pollutants": pollutants}
        r = station.post(_raw(station, "env.reading", f"station:{STATION_1_MN}", reading))
        refused(r, 400, "HJ212_MALFORMED")
    for pollutants in ({}, {"a21026": {"Flag": "N"}}):
        reading = {**base, "pollutants": pollutants}
        r = station.post(_raw(station, "env.reading", f"station:{STATION_1_MN}", reading))
        assert refused(r, 400, "ENV_RULE_VIOLATION")["field"] == "pollutants"
    with_pw = {**base, "pw": "123456", "pollutants": {"a21026": {"Rtd": "1.5"}}}
    r = station.post(_raw(station, "env.reading", f"station:{STATION_1_MN}", with_pw))
    assert refused(r, 400, "PAYLOAD_INVALID")["field"] == "pw"
    packet = hj212_packets(1)[0]
    assert "PW=" in packet
    rid = accepted(station.submit("env.reading", packet))
    harness.wait_status(rid, "sequenced", timeout=60)
    stored = station.get(f"/api/v1/records/{rid}/bundle", params={"payload": "true"}).json()["payload"]
    password = packet.split("PW=")[1].split(";")[0]
    assert "pw" not in stored and "packet" not in stored and password not in json.dumps(stored)

    hospital = harness.client("hospital-1")
    for value in (1e300, 1e-300, 10**6 + 1, 0.0001):
        rx = new_rx_id()
        issue = rx_issue(rx)
        issue["dispenseRequest"]["quantity"]["value"] = value
        r = hospital.post(_raw(hospital, "rx.issue", f"rx:{rx}", issue))
        assert refused(r, 400, "RX_QUANTITY_INVALID")["field"] == "dispenseRequest.quantity.value"
    check_accepted(harness, accepted_since(harness, started))
