"""Issue #23, the input-validation findings (4, 5, 6, 7, 10, 11, 12): each attack of the report, replayed
through the real HTTP API (and raw transactions to the node where the attack used them), refused with its
specific code; and what was accepted keeps the invariant of ``tests.kit.gateway.check_accepted`` (logged,
anchored, its bundle verifies, every read 2xx).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from adapters import adapt
from provenance.chain.contracts import ContractReverted, at, chain_key, org_id, transact
from provenance.errors import DuplicateKey, ProvenanceError
from provenance.log.bundle import EvidenceBundle, envelope_schema
from provenance.records import ENVELOPE_FIELDS, Envelope, canonical_bytes, digest_of, load_json
from provenance.timestamps import chain_time
from provenance.verification.trust import TrustInvalid, TrustStore
from tests.kit.gateway import (
    STATION_1_MN,
    STATION_2_MN,
    Harness,
    OrgClient,
    accepted_since,
    chain_lead,
    check_accepted,
    consented,
    error_code,
    hand_over,
    hj212_packets,
    new_rx_id,
    party_membership,
    rx_dispense,
    rx_issue,
    rx_revoke,
    share_access,
    share_consent,
    share_request,
)


def _signed(client: OrgClient, record: dict[str, Any], payload: Any) -> dict[str, Any]:
    """A body whose envelope is signed as given, even where the SDK's own validation would refuse it."""
    signature = client.key.sign(canonical_bytes(record))
    return {"record": record, "signature": base64.b64encode(signature).decode(), "payload": payload}


def _w3(harness: Harness) -> Web3:
    return Web3(Web3.HTTPProvider(harness.network.rpc_url))


def _contract(harness: Harness, name: str) -> Any:
    return at(_w3(harness), name, harness.network.contracts[name])


def _send(harness: Harness, org: str, fn: Any) -> None:
    """A raw transaction with an organisation's own transaction key (what the attacker held)."""
    transact(_w3(harness), fn, harness.network.account(org))


# --- finding 4: fields ending in a newline -------------------------------------------------------------


def test_trailing_newline_fields_refused(harness: Harness) -> None:
    """``$`` matched before a final "\\n": N and N + "\\n" were both accepted (a replay), a subject or rx
    id ending in "\\n" was logged but its bundle failed the schema, a ``prev`` ending in "\\n" made the
    record's reads answer 500. Every envelope field, and the identifiers inside payloads, now match whole."""
    started = time.time()
    hospital, pharmacy = harness.client("hospital-1"), harness.client("pharmacy-1")
    rx = new_rx_id()
    first = hospital.body("rx.issue", rx_issue(rx))
    r = hospital.post(first)
    assert r.status_code == 202, r.text
    issue_id = r.json()["id"]

    # The same nonce + "\n" on another record: refused as a malformed envelope, not a second record.
    other = hospital.body("rx.issue", rx_issue(new_rx_id()))
    replay = {**other["record"], "nonce": first["record"]["nonce"] + "\n"}
    r = hospital.post(_signed(hospital, replay, other["payload"]))
    assert r.status_code == 400 and error_code(r) == "RECORD_INVALID", r.text
    assert r.json()["error"]["details"] == {"field": "nonce"}

    # Each envelope field with a trailing newline (signed as sent: the signature is not what stops it).
    dispense = pharmacy.body("rx.dispense", rx_dispense(rx), prev=issue_id)
    for field in ("kind", "subject", "org", "timestamp", "nonce", "prev", "payload_digest"):
        record = {**dispense["record"], field: dispense["record"][field] + "\n"}
        r = pharmacy.post(_signed(pharmacy, record, dispense["payload"]))
        assert r.status_code == 400 and error_code(r) == "RECORD_INVALID", (field, r.text)
        assert r.json()["error"]["details"]["field"] == field, r.text
    # Other scripts' digits are not RFC 3339 digits either.
    arabic = dispense["record"]["timestamp"].replace("2", "\u0662")
    r = pharmacy.post(_signed(pharmacy, {**dispense["record"], "timestamp": arabic}, dispense["payload"]))
    assert r.status_code == 400 and error_code(r) == "RECORD_INVALID", r.text

    # Identifiers inside payloads: an rx id, a request id, a member id, a station MN.
    payload = rx_issue(rx + "X")
    payload["identifier"][0]["value"] += "\n"
    body = hospital.body("rx.issue", payload, subject=f"rx:{rx}X", payload_digest=digest_of(payload))
    r = hospital.post(body)
    assert r.status_code == 400 and error_code(r) == "FHIR_INVALID", r.text
    request = share_request("REQ-" + secrets.token_hex(4) + "\n", "data-user")
    user = harness.client("data-user")
    r = user.post(
        user.body("share.request", request, subject="dataset:health-stats", payload_digest=digest_of(request))
    )
    assert r.status_code == 400 and error_code(r) == "PAYLOAD_INVALID", r.text
    branch_id = "zb-" + secrets.token_hex(3)
    member = party_membership(branch_id, "入党申请人", None, member=f"{branch_id}.A1\n")
    branch = harness.client("party-branch")
    r = branch.post(
        branch.body("party.record", member, subject=f"branch:{branch_id}", payload_digest=digest_of(member))
    )
    assert r.status_code == 400 and error_code(r) == "PAYLOAD_INVALID", r.text
    reading = adapt("env.reading", hj212_packets(1)[0].encode()).document()
    reading = {k: v for k, v in reading.items() if k != "packet"} | {"mn": STATION_1_MN + "\n"}
    station = harness.client("station-1")
    body = station.body(
        "env.reading", reading, subject=f"station:{STATION_1_MN}", payload_digest=digest_of(reading)
    )
    r = station.post(body)
    assert r.status_code == 400 and error_code(r).startswith("HJ212_"), r.text

    # The honest dispense goes in; everything accepted here keeps the invariant.
    r = pharmacy.post(dispense)
    assert r.status_code == 202, r.text
    accepted = accepted_since(harness, started)
    assert set(accepted) == {issue_id, r.json()["id"]}
    check_accepted(harness, accepted)


# The envelope fields as the bundle schema states them, and strings near them (suffixes, other scripts).
_SUFFIXES = ["", "\n", " ", "\t", "\r\n", "\u2028", "\x00", "\u0663", "\ufeff", "Z", "A"]
_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "version": st.sampled_from([1, 1.0, "1", True, 2]),
    "kind": st.sampled_from(["rx.issue", "env.reading", "a.b_c", "rx", "Rx.issue", "rx..issue"]),
    "subject": st.from_regex(r"[a-z]{1,4}:[^\s]{1,12}", fullmatch=True) | st.just("rx:" + "x" * 200),
    "org": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}", fullmatch=True),
    "timestamp": st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z", fullmatch=True
    ),
    "nonce": st.from_regex(r"[0-9a-f]{32,64}", fullmatch=True),
    "prev": st.none() | st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    "payload_digest": st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
}


@st.composite
def _envelopes(draw: st.DrawFn) -> dict[str, Any]:
    doc = {f: draw(_FIELD_VALUES[f]) for f in ENVELOPE_FIELDS}
    for field in draw(st.lists(st.sampled_from(ENVELOPE_FIELDS), max_size=2)):
        if isinstance(doc[field], str):
            doc[field] = doc[field] + draw(st.sampled_from(_SUFFIXES))
    return doc


_SCHEMA_CHECK = fastjsonschema.compile(envelope_schema())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_envelopes())
def test_envelopes_the_gateway_accepts_pass_the_bundle_schema(doc: dict[str, Any]) -> None:
    """The gateway's envelope validation (``Envelope.from_dict``) accepts nothing the verifier's schema
    (the same for ``provenance verify`` and the /verify page) refuses: a record given a 202 can verify."""
    try:
        Envelope.from_dict(doc)
    except ProvenanceError:
        return
    _SCHEMA_CHECK(doc)  # raises JsonSchemaValueException: the gateway accepted what the schema refuses


# --- finding 5: a station's readings under another station's MN ----------------------------------------


def test_station_bound_to_its_mn(harness: Harness) -> None:
    """station-2 and the env bureau both got 202 for readings under station-1's MN. Now the MN must be one
    EnvMonitoring registered to the submitting station (STATION_NOT_OPERATOR otherwise), registered at all
    (STATION_UNKNOWN) and active (STATION_INACTIVE); the bureau submits no readings (ROLE_FORBIDDEN): it
    registers and suspends stations. Registry changes reach the gateway through EnvMonitoring's events."""
    started = time.time()
    one, two, bureau = harness.client("station-1"), harness.client("station-2"), harness.client("env-bureau")
    own_1, own_2 = hj212_packets(1)[0], hj212_packets(1, mn=STATION_2_MN)[0]
    r = two.submit("env.reading", own_1)
    assert r.status_code == 403 and error_code(r) == "STATION_NOT_OPERATOR", r.text
    assert r.json()["error"]["details"] == {"mn": STATION_1_MN, "operator": "station-1", "org": "station-2"}
    r = bureau.submit("env.reading", own_1)
    assert r.status_code == 403 and error_code(r) == "ROLE_FORBIDDEN", r.text
    r = one.submit("env.reading", own_2)
    assert r.status_code == 403 and error_code(r) == "STATION_NOT_OPERATOR", r.text
    # A bulk request is checked item by item.
    bulk = {"records": [two.body("env.reading", own_2), two.body("env.reading", hj212_packets(2)[1])]}
    r = harness.http.post("/api/v1/records:bulk", json=bulk, headers=two.headers)
    assert r.status_code == 200, r.text
    assert [(i["status"], (i["error"] or {}).get("code")) for i in r.json()["items"]] == [
        ("accepted", None),
        ("rejected", "STATION_NOT_OPERATOR"),
    ]

    # A new monitoring point: unknown until the bureau registers it, then station-2's; suspended, refused.
    mn = "33010020261125WS" + f"{secrets.randbelow(10**4):04d}"
    reading = hj212_packets(1, mn=mn)[0]
    r = two.submit("env.reading", reading)
    assert r.status_code == 404 and error_code(r) == "STATION_UNKNOWN", r.text
    env = _contract(harness, "EnvMonitoring")
    _send(
        harness,
        "env-bureau",
        env.functions.registerStation(chain_key("station", mn), org_id("station-2"), b"\0" * 32),
    )
    harness.wait(
        lambda: two.submit("env.reading", reading).status_code == 202, what="the new station accepted"
    )
    _send(harness, "env-bureau", env.functions.setStationActive(chain_key("station", mn), False))
    later = hj212_packets(2, mn=mn)[1]

    def suspended() -> bool:
        r = two.submit("env.reading", later)
        return r.status_code == 403 and error_code(r) == "STATION_INACTIVE"

    harness.wait(suspended, what="the suspension seen")
    check_accepted(harness, accepted_since(harness, started))


# --- finding 6: party membership stages --------------------------------------------------------------


def test_party_first_stage_and_transfer(harness: Harness) -> None:
    """A member's first record at 正式党员 was accepted, and the same member started again on another
    branch. Now a member id is network-wide: their first record is 入党申请人 (PARTY_FIRST_STAGE_INVALID),
    another branch records them only after a transfer record of the branch that holds them
    (PARTY_MEMBER_NOT_AT_BRANCH), and the receiving branch continues from the transferred stage."""
    started = time.time()
    branch = harness.client("party-branch")
    a, b = "zb-" + secrets.token_hex(3), "zb-" + secrets.token_hex(3)
    member = "M" + secrets.token_hex(4)

    def record(branch_id: str, stage: str, previous: str | None) -> Any:
        return branch.submit("party.record", party_membership(branch_id, stage, previous, member=member))

    def transfer(from_branch: str, to_branch: str, stage: str) -> Any:
        payload = {
            "type": "transfer",
            "branch_id": from_branch,
            "member_id": member,
            "stage": stage,
            "to_branch_id": to_branch,
            "effective_at": "2026-11-20T16:00:00+08:00",
            "approved_by": "MTG-2026-11-02",
        }
        subject, digest = f"branch:{from_branch}", digest_of(payload)  # not through the SDK's own checks
        return branch.post(branch.body("party.record", payload, subject=subject, payload_digest=digest))

    r = record(a, "正式党员", "预备党员")
    assert r.status_code == 400 and error_code(r) == "PARTY_FIRST_STAGE_INVALID", r.text
    r = transfer(a, b, "入党申请人")
    assert r.status_code == 400 and error_code(r) == "PARTY_MEMBER_NOT_AT_BRANCH", r.text
    assert record(a, "入党申请人", None).status_code == 202
    # Starting again elsewhere, or continuing elsewhere, without a transfer.
    for stage, previous in (("入党申请人", None), ("入党积极分子", "入党申请人")):
        r = record(b, stage, previous)
        assert r.status_code == 400 and error_code(r) == "PARTY_MEMBER_NOT_AT_BRANCH", r.text
        assert r.json()["error"]["details"]["recorded_branch"] == a
    r = transfer(b, a, "入党申请人")  # only the branch that holds the member transfers them
    assert r.status_code == 400 and error_code(r) == "PARTY_MEMBER_NOT_AT_BRANCH", r.text
    r = transfer(a, b, "发展对象")  # at the stage the member has
    assert r.status_code == 400 and error_code(r) == "PARTY_STAGE_TRANSITION_INVALID", r.text
    r = transfer(a, a, "入党申请人")
    assert r.status_code == 400 and error_code(r) == "PARTY_RULE_VIOLATION", r.text
    moved = transfer(a, b, "入党申请人")
    assert moved.status_code == 202, moved.text
    r = record(a, "入党积极分子", "入党申请人")  # the sending branch no longer holds them
    assert r.status_code == 400 and error_code(r) == "PARTY_MEMBER_NOT_AT_BRANCH", r.text
    r = record(b, "发展对象", "入党积极分子")  # the receiving branch continues from the transferred stage
    assert r.status_code == 400 and error_code(r) == "PARTY_STAGE_TRANSITION_INVALID", r.text
    assert record(b, "入党积极分子", "入党申请人").status_code == 202
    assert harness.wait_chain(moved.json()["id"])["chain_status"] == "confirmed"  # PartyRecords kind 5
    check_accepted(harness, accepted_since(harness, started))


# --- finding 7: a dispense of another drug and unit -----------------------------------------------------


def test_dispense_must_match_prescription(harness: Harness) -> None:
    """Morphine "2 kg" against an amoxicillin "2 盒" prescription was accepted and confirmed on chain. A
    dispense must name the prescription's medication (a code in common, else its text) in its unit, and no
    more than prescribed: RX_DISPENSE_MISMATCH otherwise; the right dispense then goes in and on chain."""
    started = time.time()
    rx = new_rx_id()
    assert harness.client("hospital-1").submit("rx.issue", rx_issue(rx)).status_code == 202
    pharmacy = harness.client("pharmacy-1")
    morphine = {"coding": [{"system": "http://www.whocc.no/atc", "code": "N02AA01", "display": "吗啡"}]}
    attacks = {
        "medication[x]": lambda d: d.update(medicationCodeableConcept=morphine),
        "quantity.unit": lambda d: d["quantity"].update(unit="kg", code="kg"),
        "quantity.value": lambda d: hand_over(d, 3),  # 3 boxes, each with its code
    }
    both = rx_dispense(rx)
    attacks["medication[x]"](both)
    attacks["quantity.unit"](both)
    r = pharmacy.submit("rx.dispense", both)  # the report's morphine 2 kg
    assert r.status_code == 400 and error_code(r) == "RX_DISPENSE_MISMATCH", r.text
    for field, change in attacks.items():
        payload = rx_dispense(rx)
        change(payload)
        r = pharmacy.submit("rx.dispense", payload)
        assert r.status_code == 400 and error_code(r) == "RX_DISPENSE_MISMATCH", (field, r.text)
        assert r.json()["error"]["details"]["field"] == field
    r = pharmacy.submit("rx.dispense", rx_dispense(rx))
    assert r.status_code == 202, r.text
    assert harness.wait_chain(r.json()["id"])["chain_status"] == "confirmed"
    check_accepted(harness, accepted_since(harness, started))


# --- finding 10: far-future expiries and squatted ids on chain ----------------------------------------


def test_far_future_chain_expiry_no_500(harness: Harness) -> None:
    """A raw ``Prescriptions.issue`` with ``expiresAt = 2^40`` made the prescription's check and dispense
    answer 500 ("year 36812 is out of range"), and squatted the rx id. Every chain time now goes through one
    conversion (``chain_time``); the squatted id is RX_EXISTS naming the chain's entry, a dispense of a
    prescription the gateway holds no record of opens with no code (ACCESS_CODE_INVALID, since #23's
    second attack: before, RX_NOT_RECORDED), the check answers 200."""
    assert chain_time(0) == "1970-01-01T00:00:00Z"
    assert chain_time(2**40) == chain_time(2**64 - 1) == "9999-12-31T23:59:59Z"
    rx_contract = _contract(harness, "Prescriptions")
    # The contract bounds expiries now (366 days ahead, #23.10 contract side): far-future ones revert.
    for expires in (2**64 - 1, 2**40):
        with pytest.raises(ContractReverted) as refused:
            _send(
                harness,
                "hospital-2",
                rx_contract.functions.issue(chain_key("rx", new_rx_id()), b"\x01" * 32, expires),
            )
        assert refused.value.error == "ExpiryTooFar"
    # Within the bound a raw transaction still squats an id: it must read without a 500.
    squatted = []
    for expires in (int(time.time()) + 300 * 86400,):
        rx = new_rx_id()
        _send(harness, "hospital-2", rx_contract.functions.issue(chain_key("rx", rx), b"\x01" * 32, expires))
        squatted.append((rx, expires))
    auditor, pharmacy = harness.client("auditor"), harness.client("pharmacy-1")
    for rx, expires in squatted:
        check = auditor.get(f"/api/v1/rx/{rx}/check")
        assert check.status_code == 200, check.text
        assert (
            check.json()["expires_at"] == chain_time(expires)
            and check.json()["on_chain"]["expires_at"] == expires
        )
        # The gateway holds no issue record, so no code opens it: a pharmacy learns nothing of it.
        r = pharmacy.submit("rx.dispense", rx_dispense(rx))
        assert r.status_code == 403 and error_code(r) == "ACCESS_CODE_INVALID", r.text
        r = harness.client("hospital-1").submit("rx.issue", rx_issue(rx))
        assert r.status_code == 409 and error_code(r) == "RX_EXISTS", r.text
        on_chain = r.json()["error"]["details"]["on_chain"]
        assert on_chain["issuer"] == "hospital-2" and on_chain["expires_at"] == chain_time(expires)
    # The issuer may still close a squatted prescription (the contract lets it): revoked, then closed.
    rx = squatted[0][0]
    r = harness.client("hospital-2").submit("rx.revoke", rx_revoke(rx))
    assert r.status_code == 202, r.text
    assert harness.wait_chain(r.json()["id"])["chain_status"] == "confirmed"


# --- finding 11: duplicate keys -----------------------------------------------------------------------


def test_duplicate_payload_keys_refused(harness: Harness, tmp_path: Path) -> None:
    """quantity 1 then 999 stored 999, though docs/formats.md says duplicates are refused. A key twice in
    any object of a request body (envelope, payload at any depth, bulk wrapper, a payload sent as JSON text)
    is JSON_DUPLICATE_KEY, and nothing is stored; the verifier's parser refuses it in a bundle too."""
    started = time.time()
    hospital = harness.client("hospital-1")
    body = hospital.body("rx.issue", rx_issue(new_rx_id()))
    text = json.dumps(body, ensure_ascii=False)
    quantity = '"quantity": {"value": 2,'
    assert quantity in text
    variants = {
        "payload": text.replace(quantity, '"quantity": {"value": 1, "value": 2,', 1),
        "envelope": text.replace('"version": 1,', '"version": 1, "version": 1,', 1),
        "top": text[:-1] + ', "signature": ' + json.dumps(body["signature"]) + "}",
    }
    headers = {**hospital.headers, "Content-Type": "application/json"}
    for where, raw in variants.items():
        r = harness.http.post("/api/v1/records", content=raw.encode(), headers=headers)
        assert r.status_code == 400 and error_code(r) == "JSON_DUPLICATE_KEY", (where, r.text)
    bulk = '{"records": [' + variants["payload"] + "]}"
    r = harness.http.post("/api/v1/records:bulk", content=bulk.encode(), headers=headers)
    assert r.status_code == 400 and error_code(r) == "JSON_DUPLICATE_KEY", r.text
    r = harness.http.post("/api/v1/records:bulk", content=b'{"records": [], "records": []}', headers=headers)
    assert r.status_code == 400 and error_code(r) == "JSON_DUPLICATE_KEY", r.text
    # A payload as JSON text (the string form of ``payload``) goes through the same parser.
    branch = harness.client("party-branch")
    meeting = json.dumps(party_membership("zb-" + secrets.token_hex(3), "入党申请人", None))
    doubled = meeting[:-1] + ', "stage": "正式党员"}'
    r = branch.post(branch.body("party.record", doubled, subject="branch:x", payload_digest="0" * 64))
    assert r.status_code == 400 and error_code(r) == "JSON_DUPLICATE_KEY", r.text
    assert accepted_since(harness, started) == []  # nothing was stored
    # The same rule on the reading side: a bundle naming a key twice is not a bundle.
    r = hospital.post(body)
    assert r.status_code == 202, r.text
    check_accepted(harness, [r.json()["id"]])
    bundle = hospital.get(f"/api/v1/records/{r.json()['id']}/bundle").text
    forged = bundle.replace('"digest":', '"digest":"' + "0" * 64 + '","digest":', 1)
    with pytest.raises(DuplicateKey):
        EvidenceBundle.from_json(forged)
    trust = tmp_path / "trust.json"
    trust.write_text('{"version": 1, "version": 1, "orgs": [], "logs": []}')
    with pytest.raises(TrustInvalid, match="duplicate key 'version'"):
        TrustStore.load(trust)
    with pytest.raises(DuplicateKey):
        load_json(b'{"a": {"b": 1, "b": 2}}')


# --- finding 12: share.access and rules only the chain enforced ----------------------------------------


def test_share_access_accessor_and_time(harness: Harness) -> None:
    """``share.access`` accepted any ``accessor`` and a future ``accessed_at``. The accessor is the
    submitting data user or one of its system accounts (``<org>:<account>``), else ACCESSOR_MISMATCH; an
    access dated beyond the clock skew is ACCESS_IN_FUTURE."""
    started = time.time()
    user = harness.client("data-user")
    request_id, digest, _ = consented(harness)
    for accessor in ("data-owner", "hospital-1", "data-user2", "data-userx:etl"):
        r = user.submit("share.access", share_access(request_id, digest, accessor))
        assert r.status_code == 403 and error_code(r) == "ACCESSOR_MISMATCH", (accessor, r.text)
    future = share_access(request_id, digest, "data-user")
    skew = timedelta(seconds=harness.settings.max_clock_skew)
    future["accessed_at"] = (datetime.now(UTC) + skew + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = user.submit("share.access", future)
    assert r.status_code == 400 and error_code(r) == "ACCESS_IN_FUTURE", r.text
    for accessor in ("data-user", "data-user:etl-01"):
        r = user.submit("share.access", share_access(request_id, digest, accessor))
        assert r.status_code == 202, (accessor, r.text)
        assert harness.wait_chain(r.json()["id"])["chain_status"] == "confirmed"
    check_accepted(harness, accepted_since(harness, started))


def _lead_at_least(harness: Harness, seconds: float) -> float:
    """Make the chain's clock run ahead of ours by ``seconds`` or more, as any burst of transactions does
    (each block is stamped a second after its parent): cheap raw prescriptions of hospital-2."""
    rx_contract = _contract(harness, "Prescriptions")
    while (lead := chain_lead(harness)) < seconds:
        for _ in range(int(seconds - lead) + 2):
            fn = rx_contract.functions.issue(
                chain_key("rx", new_rx_id()), b"\x02" * 32, int(time.time()) + 10**6
            )
            _send(harness, "hospital-2", fn)
    return lead


def test_rx_issue_refused_like_the_contract(harness: Harness) -> None:
    """The gateway answered 202 for a prescription the chain then refused (``ExpiryNotInFuture``): it
    checked the expiry against its own clock, while the contract checks ``block.timestamp``, which runs
    ahead. Each workflow kind is now refused at intake, with the chain's code, where its contract would
    refuse it: an expiry not after the chain's clock (prescriptions, consents: EXPIRY_NOT_IN_FUTURE), a
    prescription expired by the chain's clock (RX_EXPIRED), a request id squatted, a prescription or a
    consent closed on chain by a raw transaction (SHARE_REQUEST_EXISTS, RX_REVOKED, CONSENT_REVOKED)."""
    started = time.time()
    lead = _lead_at_least(harness, 8)
    hospital, pharmacy = harness.client("hospital-1"), harness.client("pharmacy-1")
    # Expiring after our clock, before the chain's: the contract would refuse it.
    rx = new_rx_id()
    r = hospital.submit("rx.issue", rx_issue(rx, valid_for=timedelta(seconds=lead / 2)))
    assert r.status_code == 400 and error_code(r) == "EXPIRY_NOT_IN_FUTURE", r.text
    assert set(r.json()["error"]["details"]) == {"field", "expires_at", "chain_time"}
    r = hospital.submit("rx.issue", rx_issue(rx, valid_for=-timedelta(seconds=1)))
    assert r.status_code == 400 and error_code(r) == "EXPIRY_NOT_IN_FUTURE", r.text
    # Expiring well after the chain's clock: accepted, and the chain confirms it (never refuses it).
    r = hospital.submit("rx.issue", rx_issue(rx, valid_for=timedelta(seconds=lead + 60)))
    assert r.status_code == 202, r.text
    assert harness.wait_chain(r.json()["id"])["chain_status"] == "confirmed"

    # Accepted, then expired by the chain's clock while ours is still before its expiry: the contract
    # would refuse the dispense (RxExpired), so does the gateway.
    rx = new_rx_id()
    payload = rx_issue(rx, valid_for=timedelta(seconds=lead + 3))
    r = hospital.submit("rx.issue", payload)
    assert r.status_code == 202, r.text
    assert harness.wait_chain(r.json()["id"])["chain_status"] == "confirmed"
    _lead_at_least(harness, lead + 6)  # the chain's clock passes the expiry (a few more blocks)
    expires = datetime.fromisoformat(
        payload["dispenseRequest"]["validityPeriod"]["end"].replace("Z", "+00:00")
    )
    r = pharmacy.submit("rx.dispense", rx_dispense(rx))
    assert datetime.now(UTC) < expires, "the test was too slow to tell the two clocks apart"
    assert r.status_code == 409 and error_code(r) == "RX_EXPIRED", r.text

    # A consent expiring before the chain's clock: the same rule in DataSharing.
    user, owner = harness.client("data-user"), harness.client("data-owner")
    request_id = "REQ-" + secrets.token_hex(4)
    requested = user.submit("share.request", share_request(request_id, "data-user"))
    assert requested.status_code == 202, requested.text
    r = owner.submit("share.consent", share_consent(request_id, valid_for=timedelta(seconds=lead / 2)))
    assert r.status_code == 400 and error_code(r) == "EXPIRY_NOT_IN_FUTURE", r.text
    # The gateway sends the request's contract call with the data user's account: let it land first, or the
    # raw transaction below races it for the account's nonce.
    harness.wait_chain(requested.json()["id"])

    # A request id squatted on chain by a raw transaction of the data user's key.
    squatted = "REQ-" + secrets.token_hex(4)
    sharing = _contract(harness, "DataSharing")
    fn = sharing.functions.request(
        chain_key("share-request", squatted), chain_key("dataset", "health-stats"), b"\x03" * 32
    )
    _send(harness, "data-user", fn)
    r = user.submit("share.request", share_request(squatted, "data-user"))
    assert r.status_code == 409 and error_code(r) == "SHARE_REQUEST_EXISTS", r.text
    assert r.json()["error"]["details"]["on_chain"] == "pending"

    # A prescription issued here, then revoked on chain by a raw transaction of its issuer: the chain's
    # order is final, a dispense is refused with the chain's state.
    rx = new_rx_id()
    r = hospital.submit("rx.issue", rx_issue(rx))
    assert r.status_code == 202 and harness.wait_chain(r.json()["id"])["chain_status"] == "confirmed"
    _send(
        harness,
        "hospital-1",
        _contract(harness, "Prescriptions").functions.revoke(chain_key("rx", rx), b"\x04" * 32),
    )
    r = pharmacy.submit("rx.dispense", rx_dispense(rx))
    assert r.status_code == 409 and error_code(r) == "RX_REVOKED", r.text

    # A consent withdrawn on chain by a raw transaction of the data owner: no access under it.
    request_id, digest, consent_id = consented(harness)
    assert harness.wait_chain(consent_id)["chain_status"] == "confirmed"
    _send(
        harness,
        "data-owner",
        sharing.functions.revokeConsent(chain_key("share-request", request_id), b"\x05" * 32),
    )
    r = user.submit("share.access", share_access(request_id, digest, "data-user"))
    assert r.status_code == 409 and error_code(r) == "CONSENT_REVOKED", r.text
    check_accepted(harness, accepted_since(harness, started))
