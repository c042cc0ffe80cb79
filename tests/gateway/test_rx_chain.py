"""The prescription chain as the seed and 医保 know it, end to end through the gateway on a Prescriptions
deployed with the default setting (a dispense needs a licensed pharmacist's approved review, 审方):
issue -> review -> dispense -> settle, each refusal with its own code."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from web3 import Web3

from adapters._common import canonical_json
from devnet.anvil import start_anvil
from devnet.deploy import deploy_network
from devnet.engines import EngineHandle
from gateway.core.db import Database
from gateway.core.security import mint_token
from provenance.access_code import HEADER
from provenance.chain.contracts import at, chain_key, transact
from provenance.cli._app import gateway_trust
from provenance.cli.trace import _trace_box
from provenance.client import Client
from provenance.crypto.sm3 import sm3_hex
from provenance.demo_rx import fresh_code
from provenance.manifest import Manifest
from provenance.network_key import default_path as default_network_key_path
from provenance.network_key import read_network_key
from provenance.trace_code import chain_digest, identity, normalise
from provenance.trace_code import digest as box_digest
from tests.adapters.test_rx_trace_codes import GTIN
from tests.kit.gateway import (
    Harness,
    Server,
    accepted,
    chain_lead,
    check_accepted,
    gateway_settings,
    kit_code,
    new_rx_id,
    refused,
    rx_dispense,
    rx_issue,
    rx_review,
    rx_revoke,
    rx_settle,
)
from tests.kit.network import start_harness, variant_network
from tests.kit.race import race


@pytest.fixture(scope="module")
def rx_chain(
    deployed: Manifest, engine: EngineHandle, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """A gateway on a Prescriptions of its own, deployed with the default: review required."""
    net = variant_network(deployed, engine, f"rx-chain-{backend}", "Prescriptions")
    h = start_harness(net, engine, backend, tmp_path_factory.mktemp("rx-chain"), pg_suffix="rx_chain")
    yield h
    h.server.stop()
    h.http.close()


def _unsplittable(n: int) -> str:
    """A random serial holding no AI (10, 17, 21): scanned without FNC1 it reads as one box, not
    TRACE_CODE_AMBIGUOUS (``01<gtin>21SN3A10F2`` is serial SN3A10F2, or SN3A with batch F2)."""
    return "".join(secrets.choice("ABCDEFGHJK3456789") for _ in range(n))


def _issue(h: Harness, rx: str, **kw: Any) -> str:
    return accepted(h.client("hospital-1").submit("rx.issue", rx_issue(rx, **kw)))


@pytest.fixture(scope="module")
def rx_chain_anvil(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The same on anvil, a network of its own deployed by the devnet (review required): the ledger must
    not depend on our node."""
    anvil = start_anvil()
    try:
        net = deploy_network(anvil, out_dir=tmp_path_factory.mktemp("rx-anvil-network"))
        h = start_harness(net, anvil, backend, tmp_path_factory.mktemp("rx-anvil"), pg_suffix="rx_anvil")
        yield h
        h.server.stop()
        h.http.close()
    finally:
        anvil.stop()


def test_issue_review_dispense_settle_each_verified(rx_chain: Harness) -> None:
    _whole_chain(rx_chain)


def test_the_whole_chain_on_anvil_too(rx_chain_anvil: Harness) -> None:
    _whole_chain(rx_chain_anvil)


def _whole_chain(h: Harness) -> None:
    """issue -> review -> dispense (with its boxes' codes) -> settle, each refusal on the way with its code;
    every step confirmed by the contract, logged, anchored and verified offline."""
    rx = new_rx_id()
    issue_id = _issue(h, rx)
    pharmacy = h.client("pharmacy-1")
    refused(pharmacy.submit("rx.dispense", rx_dispense(rx)), 409, "RX_NOT_REVIEWED")
    # 审方 is a licensed pharmacist's: a pharmacy organisation may not record it.
    refused(pharmacy.submit("rx.review", rx_review(rx)), 403, "ROLE_FORBIDDEN")
    review_id = accepted(h.client("pharmacist-1").submit("rx.review", rx_review(rx)))
    again = h.client("pharmacist-2").submit("rx.review", rx_review(rx, "rejected"))
    assert refused(again, 409, "RX_ALREADY_REVIEWED")["decision"] == "approved"
    dispense_id = accepted(pharmacy.submit("rx.dispense", rx_dispense(rx)))
    insurer = h.client("insurer")
    settle_id = accepted(insurer.submit("rx.settle", rx_settle(rx, dispense_id)))
    refused(insurer.submit("rx.settle", rx_settle(rx, dispense_id)), 409, "RX_ALREADY_SETTLED")

    ids = [issue_id, review_id, dispense_id, settle_id]
    assert [h.wait_chain(i)["chain_status"] for i in ids] == ["confirmed"] * 4
    # The contract holds each step under the record that made it.
    w3 = Web3(Web3.HTTPProvider(h.network.rpc_url))
    contract = at(w3, "Prescriptions", h.network.contracts["Prescriptions"])
    decision, _, review_digest = contract.functions.reviewOf(chain_key("rx", rx)).call()
    assert (decision, bytes(review_digest).hex()) == (1, review_id)
    _, settle_digest = contract.functions.settlementOf(chain_key("rx", rx)).call()
    assert bytes(settle_digest).hex() == settle_id
    # Every step is logged, anchored, and its bundle verifies offline (pinned keys, proof, anchor).
    check_accepted(h, ids)
    # The trail of the prescription lists the four steps in order.
    trail = h.client("auditor").get(f"/api/v1/subjects/rx:{rx}/records").json()["items"]
    assert [r["kind"] for r in trail] == ["rx.issue", "rx.review", "rx.dispense", "rx.settle"]


def test_a_rejected_prescription_is_never_dispensed(rx_chain: Harness) -> None:
    h, rx = rx_chain, new_rx_id()
    _issue(h, rx)
    review_id = accepted(h.client("pharmacist-2").submit("rx.review", rx_review(rx, "rejected")))
    details = refused(
        h.client("pharmacy-2").submit("rx.dispense", rx_dispense(rx)), 409, "RX_REVIEW_REJECTED"
    )
    assert details["review_record"] == review_id
    assert h.wait_chain(review_id)["chain_status"] == "confirmed"
    # Still refused once the review is on chain (the gateway's state and the contract agree).
    refused(h.client("pharmacy-2").submit("rx.dispense", rx_dispense(rx)), 409, "RX_REVIEW_REJECTED")


def test_closed_prescriptions_are_not_reviewable(rx_chain: Harness) -> None:
    h = rx_chain
    revoked = new_rx_id()
    _issue(h, revoked)
    accepted(h.client("hospital-1").submit("rx.revoke", rx_revoke(revoked)))
    pharmacist = h.client("pharmacist-1")
    assert (
        refused(pharmacist.submit("rx.review", rx_review(revoked)), 409, "RX_NOT_REVIEWABLE")["status"]
        == "revoked"
    )

    dispensed = new_rx_id()
    _issue(h, dispensed)
    accepted(pharmacist.submit("rx.review", rx_review(dispensed)))
    accepted(h.client("pharmacy-1").submit("rx.dispense", rx_dispense(dispensed)))
    details = refused(
        h.client("pharmacist-2").submit("rx.review", rx_review(dispensed)), 409, "RX_NOT_REVIEWABLE"
    )
    assert details["status"] == "dispensed"

    expired = new_rx_id()
    lead = chain_lead(h)
    _issue(h, expired, valid_for=timedelta(seconds=lead + 8))
    h.wait(
        lambda: h.client("auditor").get(f"/api/v1/rx/{expired}/check").json()["expired"],
        timeout=lead + 45,
        what="expiry",
    )
    assert (
        refused(pharmacist.submit("rx.review", rx_review(expired)), 409, "RX_NOT_REVIEWABLE")["status"]
        == "expired"
    )


def test_settlement_only_of_a_dispense(rx_chain: Harness) -> None:
    h, rx = rx_chain, new_rx_id()
    insurer = h.client("insurer")
    _issue(h, rx)
    fake = secrets.token_hex(32)
    refused(insurer.submit("rx.settle", rx_settle(rx, fake)), 409, "RX_NOT_DISPENSED")
    accepted(h.client("pharmacist-1").submit("rx.review", rx_review(rx)))
    dispense_id = accepted(h.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx)))
    # Another dispense than the one recorded is not this prescription's.
    assert refused(insurer.submit("rx.settle", rx_settle(rx, fake)), 409, "RX_NOT_DISPENSED")["field"] == (
        "dispense_record"
    )
    # Only 医保 settles; amounts are yuan with two places.
    refused(h.client("pharmacy-1").submit("rx.settle", rx_settle(rx, dispense_id)), 403, "ROLE_FORBIDDEN")
    bad = {**rx_settle(rx, dispense_id), "fund_paid": "23.4"}
    digest = sm3_hex(canonical_json(bad))  # what a client's own adapter would refuse to compute
    r = insurer.submit("rx.settle", bad, subject=f"rx:{rx}", payload_digest=digest)
    refused(r, 400, "RX_AMOUNT_INVALID")

    revoked = new_rx_id()
    _issue(h, revoked)
    accepted(h.client("hospital-1").submit("rx.revoke", rx_revoke(revoked)))
    refused(insurer.submit("rx.settle", rx_settle(revoked, fake)), 409, "RX_REVOKED")


def test_a_settlement_id_settles_one_prescription_only(rx_chain: Harness) -> None:
    # The fourth attack (info): 医保 settled a second prescription under a settlement id already used.
    h = rx_chain
    insurer = h.client("insurer")
    first, second = _reviewed(h), _reviewed(h)
    dispensed = {
        rx: accepted(h.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx))) for rx in (first, second)
    }
    sid = "YB" + secrets.token_hex(6).upper()
    settled = accepted(insurer.submit("rx.settle", rx_settle(first, dispensed[first], sid)))
    r = insurer.submit("rx.settle", rx_settle(second, dispensed[second], sid))
    assert refused(r, 409, "RX_SETTLEMENT_ID_REUSED") == {"field": "settlement_id", "settlement_id": sid}
    # Nothing kept: the second prescription is unsettled and settles under an id of its own.
    trail = h.client("auditor").get(f"/api/v1/subjects/rx:{second}/records").json()["items"]
    assert [t["kind"] for t in trail] == ["rx.issue", "rx.review", "rx.dispense"]
    again = accepted(insurer.submit("rx.settle", rx_settle(second, dispensed[second])))
    assert h.wait_chain(again)["chain_status"] == "confirmed"
    assert h.wait_chain(settled)["chain_status"] == "confirmed"


def _reviewed(h: Harness, quantity: dict[str, Any] | None = None) -> str:
    """A fresh prescription, issued (for ``quantity``, else the golden one's) and approved."""
    rx = new_rx_id()
    issue = rx_issue(rx)
    if quantity is not None:
        issue["dispenseRequest"]["quantity"] = dict(quantity)
    accepted(h.client("hospital-1").submit("rx.issue", issue))
    accepted(h.client("pharmacist-1").submit("rx.review", rx_review(rx)))
    return rx


def test_boxes_without_their_codes_are_refused_tablets_need_none(rx_chain: Harness) -> None:
    h, rx = rx_chain, _reviewed(rx_chain)
    pharmacy, auditor = h.client("pharmacy-1"), h.client("auditor")
    # 2 盒 handed over, no code listed (what the client's own adapter refuses to digest: sent as is).
    bare = rx_dispense(rx, [])
    digest = sm3_hex(canonical_json(bare))
    r = pharmacy.submit("rx.dispense", bare, subject=f"rx:{rx}", payload_digest=digest)
    assert refused(r, 400, "TRACE_CODE_INVALID") == {"field": "extension"}
    # Nothing kept: no record on the trail, the prescription still open, and dispensed once with its codes.
    trail = auditor.get(f"/api/v1/subjects/rx:{rx}/records").json()["items"]
    assert [t["kind"] for t in trail] == ["rx.issue", "rx.review"]
    assert auditor.get(f"/api/v1/rx/{rx}/check").json()["dispensed"] is False
    assert (
        h.wait_chain(accepted(pharmacy.submit("rx.dispense", rx_dispense(rx))))["chain_status"] == "confirmed"
    )

    # 10 tablets cannot be counted against boxes: no code is required.
    tablets = {"value": 10, "unit": "片", "system": "http://unitsofmeasure.org", "code": "{tbl}"}
    rx = _reviewed(h, tablets)
    loose = {**rx_dispense(rx, []), "quantity": dict(tablets)}
    dispense_id = accepted(pharmacy.submit("rx.dispense", loose))
    assert h.wait_chain(dispense_id)["chain_status"] == "confirmed"
    assert auditor.get(f"/api/v1/rx/{rx}/check").json()["dispensed"] is True


def test_two_pharmacies_racing_on_one_box_exactly_one_wins(rx_chain: Harness) -> None:
    h = rx_chain
    shared = fresh_code()
    bodies = {
        org: h.client(org).body("rx.dispense", rx_dispense(_reviewed(h), [shared, fresh_code()]))
        for org in ("pharmacy-1", "pharmacy-2")
    }
    results = race(h, bodies)
    assert sorted(r.status_code for r in results.values()) == [202, 409], {
        k: v.text for k, v in results.items()
    }
    loser = next(r for r in results.values() if r.status_code == 409)
    assert refused(loser, 409, "TRACE_CODE_REUSED") == {"field": "extension", "code": shared}
    winner = next(r for r in results.values() if r.status_code == 202)
    assert h.wait_chain(winner.json()["id"])["chain_status"] == "confirmed"
    # The chain holds the box under the winner's dispense, by its keyed digest under the network key only.
    assert _code_use(h, chain_digest(_network_key(h), shared)) == winner.json()["id"]
    assert _code_use(h, sm3_hex(shared.encode())) is None
    check_accepted(h, [winner.json()["id"]])


def test_a_resold_box_is_refused_later_in_any_form(rx_chain: Harness) -> None:
    h = rx_chain
    serial = "SN" + _unsplittable(8)  # scanned below without GS
    first = accepted(
        h.client("pharmacy-1").submit(
            "rx.dispense", rx_dispense(_reviewed(h), [f"(01){GTIN}(21){serial}", fresh_code()])
        )
    )
    assert h.wait_chain(first)["chain_status"] == "confirmed"
    # Weeks later the box comes back (回流药), scanned raw from its DataMatrix at another pharmacy.
    resold = rx_dispense(_reviewed(h), [f"]d201{GTIN}21{serial}", fresh_code()])
    r = h.client("pharmacy-2").submit("rx.dispense", resold)
    assert refused(r, 409, "TRACE_CODE_REUSED")["code"] == f"(01){GTIN}(21){serial}"


def test_one_box_in_any_other_form_is_refused_and_looked_up_as_its_first_dispense(rx_chain: Harness) -> None:
    # The fourth attack: the box dispensed by pharmacy-1, written again by pharmacy-2 without its expiry,
    # with another expiry, with a batch, as digits only; a 码上放心 code with a leading zero.
    h = rx_chain
    serial = "ID" + secrets.token_hex(4).upper()
    digits = "".join(secrets.choice("3456789") for _ in range(6))  # written below without GS
    nmpa = fresh_code()
    rx = _reviewed(h)
    boxes = [f"(01){GTIN}(17)281105(21){serial}", f"(01){GTIN}(21){digits}"]
    first_id = accepted(h.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx, boxes)))
    assert h.wait_chain(first_id)["chain_status"] == "confirmed"
    again = {
        f"(01){GTIN}(21){serial}": f"(01){GTIN}(21){serial}",
        f"(01){GTIN}(17)291231(21){serial}": f"(01){GTIN}(17)291231(21){serial}",
        f"(01){GTIN}(10)B1(17)281105(21){serial}": f"(01){GTIN}(17)281105(10)B1(21){serial}",
        f"01{GTIN}21{digits}": f"(01){GTIN}(21){digits}",
    }
    for written, normal in again.items():
        r = h.client("pharmacy-2").submit("rx.dispense", rx_dispense(_reviewed(h), [written, fresh_code()]))
        assert refused(r, 409, "TRACE_CODE_REUSED") == {"field": "extension", "code": normal}, written
        # The look-up of any form answers the first dispense.
        doc = _look_up(h, "regulator", written).json()
        assert doc["dispensed"] is True and doc["dispense"]["record"] == first_id, (written, doc)
        assert doc["identity"] == f"(01){GTIN}(21){serial if serial in written else digits}"
    # A 码上放心 code and its 21-digit spelling with a leading zero: one box.
    nmpa_id = accepted(
        h.client("pharmacy-1").submit("rx.dispense", rx_dispense(_reviewed(h), [nmpa, fresh_code()]))
    )
    assert h.wait_chain(nmpa_id)["chain_status"] == "confirmed"
    r = h.client("pharmacy-2").submit("rx.dispense", rx_dispense(_reviewed(h), ["0" + nmpa, fresh_code()]))
    assert refused(r, 409, "TRACE_CODE_REUSED") == {"field": "extension", "code": "0" + nmpa}
    doc = _look_up(h, "regulator", "0" + nmpa).json()
    assert (doc["form"], doc["identity"], doc["dispense"]["record"]) == ("numeric", nmpa, nmpa_id)
    # The chain holds each box by the keyed digest of its identity, whichever form the pharmacy wrote.
    for written in again:
        assert _code_use(h, chain_digest(_network_key(h), normalise(written)[1])) == first_id, written
    # Within one dispense: one box listed in two forms is listed twice, nothing recorded.
    rx = _reviewed(h)
    twice = [f"(01){GTIN}(10)A(21)X{serial}", f"(01){GTIN}(10)B(21)X{serial}"]
    body = rx_dispense(rx, twice)  # sent as is: the client's own adapter refuses it too
    digest = sm3_hex(canonical_json(body))
    r = h.client("pharmacy-1").submit("rx.dispense", body, subject=f"rx:{rx}", payload_digest=digest)
    assert refused(r, 400, "TRACE_CODE_INVALID") == {"field": "extension.1.valueString"}
    assert h.client("auditor").get(f"/api/v1/rx/{rx}/check").json()["dispensed"] is False


def test_boxes_spelled_in_any_package_unit_need_their_codes(rx_chain: Harness) -> None:
    h = rx_chain
    pharmacy = h.client("pharmacy-1")
    spellings = [
        ("Box", None),
        ("ｂｏｘ", None),
        ("盒 ", None),
        ("盒装", None),
        ("瓶", None),
        ("Box", "{Box}"),
    ]
    for unit, coded in spellings:
        quantity: dict[str, Any] = {"value": 2, "unit": unit}
        if coded is not None:
            quantity |= {"system": "http://unitsofmeasure.org", "code": coded}
        rx = _reviewed(h, quantity)
        bare = {**rx_dispense(rx, []), "quantity": dict(quantity)}
        # Sent as is: the client's own adapter would refuse to digest it.
        r = pharmacy.submit(
            "rx.dispense", bare, subject=f"rx:{rx}", payload_digest=sm3_hex(canonical_json(bare))
        )
        assert refused(r, 400, "TRACE_CODE_INVALID") == {"field": "extension"}, unit
        assert h.client("auditor").get(f"/api/v1/rx/{rx}/check").json()["dispensed"] is False


def _look_up(h: Harness, org: str, code: str) -> Any:
    # By token alone: the harness has one for an unregistered organisation too (no key in the manifest).
    auth = {"Authorization": f"Bearer {h.tokens[org]}"}
    return h.http.get("/api/v1/rx/codes", params={"code": code}, headers=auth)


def _network_key(h: Harness) -> bytes:
    """The network key the harness's gateway was started with (the devnet's keys/network.key)."""
    assert h.network.path is not None
    return read_network_key(default_network_key_path(h.network.path))


def _code_use(h: Harness, key: str) -> str | None:
    """The dispense record ``Prescriptions.codeUse`` holds under ``key`` (None: none)."""
    w3 = Web3(Web3.HTTPProvider(h.network.rpc_url))
    contract = at(w3, "Prescriptions", h.network.contracts["Prescriptions"])
    _, record = contract.functions.codeUse(bytes.fromhex(key)).call()
    return bytes(record).hex() if any(bytes(record)) else None


def test_a_box_is_traced_by_its_code_for_its_readers_only(rx_chain: Harness) -> None:
    h = rx_chain
    serial = "LK" + _unsplittable(8)  # scanned below without GS
    rx = _reviewed(h)
    payload = rx_dispense(rx, [f"(01){GTIN}(21){serial}", fresh_code()])
    dispense_id = accepted(h.client("pharmacy-1").submit("rx.dispense", payload))
    normal = f"(01){GTIN}(21){serial}"
    # Asked in the raw DataMatrix form (FNC1 as GS): answered under the normal form.
    raw = f"]d201{GTIN}21{serial}"
    # Where and when: the dispense's readers under the rx read policy (oversight and 医保 by role, the
    # dispensing pharmacy, the prescription's hospital and pharmacist as its parties). The domain's other
    # organisations learn what a dispense of the box would tell them: the code only. Anyone else: nothing.
    readers = {"regulator", "auditor", "insurer", "pharmacy-1", "hospital-1", "pharmacist-1"}
    code_only = {"pharmacy-2", "hospital-2", "pharmacist-2"}
    for org in sorted(h.tokens):
        r = _look_up(h, org, raw)
        if org in readers:
            assert r.status_code == 200, (org, r.text)
            doc = r.json()
            assert (doc["code"], doc["form"], doc["dispensed"]) == (normal, "gs1", True)
            assert doc["digest"] == sm3_hex(normal.encode())
            # Its readers get the box's key on chain with the dispense, to check the chain's word.
            assert doc["chain_key"] == chain_digest(_network_key(h), normal)
            use = doc["dispense"]
            assert (use["record"], use["rx_id"], use["pharmacy"]) == (dispense_id, rx, "pharmacy-1"), org
            assert use["handed_over_at"] == payload["whenHandedOver"], org
        elif org in code_only:
            assert refused(r, 409, "TRACE_CODE_REUSED") == {"code": normal}, org
        else:
            refused(r, 403, "ROLE_FORBIDDEN")
    assert readers | code_only < set(h.tokens)
    # A dispense of the box by another pharmacy: the same code, nothing more.
    resold = h.client("pharmacy-2").submit("rx.dispense", rx_dispense(_reviewed(h), [raw, fresh_code()]))
    assert refused(resold, 409, "TRACE_CODE_REUSED") == {"field": "extension", "code": normal}
    # A box never dispensed: dispensed false, for any of the domain's organisations.
    fresh = fresh_code()
    doc = _look_up(h, "pharmacy-2", fresh).json()
    assert (doc["code"], doc["form"], doc["dispensed"], doc["dispense"]) == (fresh, "nmpa20", False, None)
    assert doc["chain_key"] is None  # else a pharmacy could watch the public chain for the box's dispense
    # Outside the prescription domain and oversight: no look-up at all, dispensed or not.
    for org in ("station-1", "data-user", "party-branch", "log-operator"):
        refused(_look_up(h, org, fresh), 403, "ROLE_FORBIDDEN")
    # A code of no accepted form, or none: 400 naming the query parameter.
    assert refused(_look_up(h, "regulator", f"(01){GTIN[:-1]}0(21)X"), 400, "TRACE_CODE_INVALID") == {
        "field": "code"
    }
    no_code = h.client("regulator").get("/api/v1/rx/codes")
    refused(no_code, 400, "TRACE_CODE_INVALID")


def test_a_chain_reader_holding_a_box_finds_its_dispense_only_with_the_network_key(rx_chain: Harness) -> None:
    # The sixth attack's finding 3: the node's JSON-RPC is public (T7) and each box carries its code in print.
    h = rx_chain
    serial = "CH" + _unsplittable(8)
    printed = [f"(01){GTIN}(17)281105(10)B7(21){serial}", fresh_code()]
    dispense_id = accepted(h.client("pharmacy-1").submit("rx.dispense", rx_dispense(_reviewed(h), printed)))
    assert h.wait_chain(dispense_id)["chain_status"] == "confirmed"
    normals = [normalise(c)[1] for c in printed]
    # What a reader holding the boxes tests: SM3 of each box's identity (the digest stored before), of its
    # normal form, of the code as printed.
    guesses = {
        bytes.fromhex(sm3_hex(v.encode()))
        for n, c in zip(normals, printed, strict=True)
        for v in (identity(n), n, c)
    }
    keyed = {bytes.fromhex(chain_digest(_network_key(h), n)) for n in normals}
    w3 = Web3(Web3.HTTPProvider(h.network.rpc_url))
    address = Web3.to_checksum_address(h.network.contracts["Prescriptions"])
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": address})
    # Every transaction ever sent to Prescriptions (refused ones too), from the block of its first event on.
    calls: list[Any] = [
        tx
        for number in range(min(log["blockNumber"] for log in logs), w3.eth.block_number + 1)
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]
        if not isinstance(tx, bytes) and tx["to"] == address
    ]
    seen = [bytes(tx["input"]) for tx in calls] + [
        b"".join(bytes(t) for t in log["topics"]) + bytes(log["data"]) for log in logs
    ]
    assert not [g.hex() for g in guesses if any(g in blob for blob in seen)]
    for guess in guesses:
        assert _code_use(h, guess.hex()) is None
    # With the network key the same scan finds the dispense: its transaction, its event, its account.
    found = [tx for tx in calls if all(k in bytes(tx["input"]) for k in keyed)]
    assert len(found) == 1
    receipt = w3.eth.get_transaction_receipt(found[0]["hash"])
    contract = at(w3, "Prescriptions", address)
    (event,) = contract.events.Dispensed().process_receipt(receipt)
    assert bytes(event["args"]["recordDigest"]).hex() == dispense_id
    assert event["args"]["account"] == h.network.account("pharmacy-1").address
    assert {_code_use(h, k.hex()) for k in keyed} == {dispense_id}


def test_a_box_dispensed_through_one_gateway_is_refused_through_another_of_the_network(
    rx_chain: Harness, tmp_path: Path
) -> None:
    # Two gateways of one network, each with a database of its own, started with the same network key
    # file: the second finds the box on chain under the same keyed digest.
    h = rx_chain
    box = fresh_code()
    first = accepted(
        h.client("pharmacy-1").submit("rx.dispense", rx_dispense(_reviewed(h), [box, fresh_code()]))
    )
    assert h.wait_chain(first)["chain_status"] == "confirmed"
    settings = gateway_settings(tmp_path, h.network, h.network.rpc_url, start_workers=False)
    assert settings.network_key_path == default_network_key_path(h.network.path or Path())
    db = Database(settings.database_url)
    try:
        db.create_all()
        tokens = {
            o: mint_token(db, o, label="test")
            for o in ("hospital-1", "pharmacist-1", "pharmacy-2", "regulator")
        }
    finally:
        db.dispose()
    server = Server(settings)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:

            def post(org: str, kind: str, payload: Any, rx: str) -> httpx.Response:
                headers = {"Authorization": f"Bearer {tokens[org]}", HEADER: str(kit_code(rx))}
                return http.post("/api/v1/records", json=h.client(org).body(kind, payload), headers=headers)

            rx = new_rx_id()
            accepted(post("hospital-1", "rx.issue", rx_issue(rx), rx))
            accepted(post("pharmacist-1", "rx.review", rx_review(rx), rx))
            r = post("pharmacy-2", "rx.dispense", rx_dispense(rx, [box, fresh_code()]), rx)
            assert refused(r, 409, "TRACE_CODE_REUSED") == {"field": "extension", "code": box}
            # Its look-up finds the other gateway's dispense on chain, under the box's key.
            auth = {"Authorization": f"Bearer {tokens['regulator']}"}
            doc = http.get("/api/v1/rx/codes", params={"code": box}, headers=auth).json()
            assert (doc["dispensed"], doc["dispense"]["record"]) == (True, first), doc
            assert doc["chain_key"] == chain_digest(_network_key(h), box)
    finally:
        server.stop()


def test_a_box_on_chain_under_its_sm3_from_before_keyed_digests_is_still_refused_and_found(
    rx_chain: Harness,
) -> None:
    # A dispense sent before keyed digests: the box is on chain under the SM3 of its identity (sent here from
    # the pharmacy's own account, as the gateway sent it then; its prescription issued and reviewed on chain).
    h = rx_chain
    box, rx = fresh_code(), _reviewed(h)
    w3 = Web3(Web3.HTTPProvider(h.network.rpc_url))
    contract = at(w3, "Prescriptions", h.network.contracts["Prescriptions"])
    h.wait(lambda: _rx_on_chain(contract, rx), what=f"{rx} reviewed on chain")
    old_record = secrets.token_bytes(32)
    sm3_key = bytes.fromhex(box_digest(normalise(box)[1]))  # SM3 of the box's identity
    call = contract.functions.dispenseWithCodes(chain_key("rx", rx), old_record, [sm3_key])
    transact(w3, call, h.network.account("pharmacy-1"))
    assert _code_use(h, sm3_key.hex()) == old_record.hex()
    # Dispensed again now (keyed): refused, the box found under its old digest.
    r = h.client("pharmacy-2").submit("rx.dispense", rx_dispense(_reviewed(h), [box, fresh_code()]))
    assert refused(r, 409, "TRACE_CODE_REUSED") == {"field": "extension", "code": box}
    # Oversight looks it up: the chain's record, under the key the chain holds it by.
    doc = _look_up(h, "regulator", box).json()
    assert (doc["dispensed"], doc["dispense"]["record"], doc["chain_key"]) == (
        True,
        old_record.hex(),
        sm3_key.hex(),
    )


def _rx_on_chain(contract: Any, rx: str) -> bool:
    """Whether ``rx`` is issued and approved on chain (its records confirmed)."""
    status = contract.functions.statusOf(chain_key("rx", rx)).call()
    decision = contract.functions.reviewOf(chain_key("rx", rx)).call()[0]
    return bool(status[0] == 1 and decision == 1)


class _LyingGateway(Client):
    """The gateway's answer to a code look-up, forged: it names the dispense of another box (what an operator
    would do to pin a resold box on an innocent pharmacy). Everything else is the real gateway's."""

    def __init__(self, *, real: str, claimed: str, **kw: Any) -> None:
        super().__init__(**kw)
        self._real, self._claimed = real, claimed

    def trace_code(self, code: str) -> dict[str, Any]:
        return {**super().trace_code(self._real), "code": self._claimed}


def test_trace_code_fails_when_the_signed_dispense_does_not_list_the_box(
    rx_chain: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = rx_chain
    boxes = [fresh_code(), fresh_code()]
    dispense_id = accepted(h.client("pharmacy-1").submit("rx.dispense", rx_dispense(_reviewed(h), boxes)))
    h.wait_status(dispense_id, "anchored")
    store = gateway_trust(h.server.url)
    token = h.tokens["regulator"]
    # The true answer: the verified dispense lists the box.
    with Client(base_url=h.server.url, token=token) as client:
        _trace_box(client, store, boxes[0], None, False, True)
    told = json.loads(capsys.readouterr().out)
    assert told["check"]["steps"]["listing"] == "passed" and "failed_step" not in told["check"]
    assert "chain_key" not in told["check"]["steps"]  # without the network key: not checked
    # A regulator holding the network key checks the box's key on chain the gateway names; a gateway keying
    # with another key (here: the CLI given another) fails step chain_key, exit 1.
    with Client(base_url=h.server.url, token=token) as client:
        _trace_box(client, store, boxes[0], None, False, True, _network_key(h))
        assert json.loads(capsys.readouterr().out)["check"]["steps"]["chain_key"] == "passed"
        with pytest.raises(typer.Exit) as info:
            _trace_box(client, store, boxes[0], None, False, True, secrets.token_bytes(32))
    assert info.value.exit_code == 1
    told = json.loads(capsys.readouterr().out)
    assert (told["check"]["failed_step"], told["check"]["code"]) == ("chain_key", "CHAIN_KEY_MISMATCH")
    # A box the dispense never handed over, pinned on it: the record verifies, the box step fails, exit 1.
    other = fresh_code()
    with (
        _LyingGateway(base_url=h.server.url, token=token, real=boxes[0], claimed=other) as liar,
        pytest.raises(typer.Exit) as info,
    ):
        _trace_box(liar, store, other, None, False, True)
    assert info.value.exit_code == 1
    told = json.loads(capsys.readouterr().out)
    assert (told["check"]["failed_step"], told["check"]["code"]) == ("box", "TRACE_CODE_NOT_LISTED")
    assert told["check"]["steps"]["signature"] == "passed"
