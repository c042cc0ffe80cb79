"""No person's identifier leaves the gateway in clear outside the payload its readers are entitled to: the
facts and workflow states (kept in clear in the gateway's database, which backups copy; facts are served by
the domains' reads), the API's answers about a record and the chain's transactions and events name a party
member, an attendee, a recorder, a patient, a prescriber or a data user's operator account only as a keyed
digest (HMAC-SM3 under the deployment's key, derived from the KEK), never as a plain SM3 of the id."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from sqlmodel import SQLModel, col, select
from web3 import Web3

from adapters import AdaptContext
from adapters._common import pseudonym
from gateway.core.db import Database
from gateway.core.kek import PSEUDONYM_KEY_LABEL, read_kek
from gateway.models import Record
from provenance.crypto import sm3_hex
from tests.kit.gateway import (
    Harness,
    accepted,
    party_meeting,
    party_membership,
    rx_issue,
    share_access,
    share_consent,
    share_request,
)


def _database_text(url: str) -> str:
    """Every row of every table of the gateway's database, as text (payloads are SM4-GCM ciphertext)."""
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return "\n".join(
                repr(tuple(row)) for t in SQLModel.metadata.sorted_tables for row in conn.execute(t.select())
            )
    finally:
        db.dispose()


def _chain_bytes(w3: Web3, first_block: int) -> bytes:
    """The input of every transaction and the topics and data of every event since ``first_block``."""
    out = bytearray()
    for n in range(first_block, w3.eth.block_number + 1):
        txs: list[Any] = list(w3.eth.get_block(n, full_transactions=True)["transactions"])
        for tx in txs:
            out += bytes(tx["input"])
            for log in w3.eth.get_transaction_receipt(tx["hash"])["logs"]:
                out += b"".join(bytes(t) for t in log["topics"]) + bytes(log["data"])
    return bytes(out)


def test_no_person_identifier_leaves_the_gateway_in_clear(harness: Harness) -> None:
    tag = secrets.token_hex(4).upper()
    member, attendee, absentee, recorder = (f"M{tag}{c}" for c in "ABCD")
    patient, prescriber, account = f"Patient/P{tag}", f"Practitioner/D{tag}", f"op-{tag.lower()}"
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    first_block = w3.eth.block_number + 1

    branch_id = "zb-" + tag.lower()
    branch = harness.client("party-branch")
    meeting = party_meeting(branch_id, "MTG-" + tag) | {
        "attendees": [member, attendee],
        "absentees": [absentee],
        "recorder": recorder,
    }
    party = [
        accepted(branch.submit("party.record", meeting)),
        accepted(branch.submit("party.record", party_membership(branch_id, "入党申请人", None, member))),
        accepted(
            branch.submit("party.record", party_membership(branch_id, "入党积极分子", "入党申请人", member))
        ),
    ]
    rx_id = "RX" + tag
    issue = rx_issue(rx_id)
    issue["subject"]["reference"], issue["requester"]["reference"] = patient, prescriber
    rx = accepted(harness.client("hospital-1").submit("rx.issue", issue))
    user, owner = harness.client("data-user"), harness.client("data-owner")
    request_id = "REQ-" + tag
    accepted(user.submit("share.request", share_request(request_id, "data-user")))
    consent = accepted(owner.submit("share.consent", share_consent(request_id)))
    digest = harness.record(consent)["payload_digest"]
    access = accepted(user.submit("share.access", share_access(request_id, digest, f"data-user:{account}")))
    ids = [*party, rx, consent, access]
    for rid in ids:
        assert harness.wait_chain(rid, timeout=60)["chain_status"] == "confirmed", rid
        harness.wait_status(rid, "anchored", timeout=60)

    people = (member, attendee, absentee, recorder, patient, prescriber, account, f"P{tag}", f"D{tag}")
    plain = {sm3_hex(p.encode()) for p in people} | {sm3_hex(f"member:{member}".encode())}

    # The database: facts and states hold the keyed digests under this deployment's key, nothing else.
    text = _database_text(harness.settings.database_url)
    assert not [p for p in people if p in text] and not [d for d in plain if d in text]
    key = read_kek(harness.settings.kek_path)
    assert key is not None
    ctx = AdaptContext(pseudonym_key=key.derive(PSEUDONYM_KEY_LABEL))
    db = Database(harness.settings.database_url)
    try:
        with db.session() as s:
            facts = {r.id: r.facts for r in s.exec(select(Record).where(col(Record.id).in_(ids)))}
    finally:
        db.dispose()
    keyed_member = pseudonym(ctx, "party-member", member)
    assert [facts[i].get("member_ref_hmac") for i in party] == [None, keyed_member, keyed_member]
    assert facts[rx]["patient_ref_hmac"] == pseudonym(ctx, "patient-ref", patient)
    assert facts[rx]["requester_ref_hmac"] == pseudonym(ctx, "requester-ref", prescriber)
    assert facts[access]["accessor_ref_hmac"] == pseudonym(ctx, "accessor", f"data-user:{account}")
    assert keyed_member is not None and keyed_member in text  # the member's place is keyed by it too

    # The API's answers about the records (envelope, status, listing, the bundle beside its payload).
    auditor = harness.client("auditor")
    answers = [auditor.get(f"/api/v1/records/{rid}").text for rid in ids]
    answers.append(branch.get(f"/api/v1/subjects/branch:{branch_id}/records").text)
    for rid in ids:
        bundle = auditor.get(f"/api/v1/records/{rid}/bundle").json()
        assert "payload" in bundle  # the signed payload is the record itself, for its readers only
        answers.append(json.dumps({k: v for k, v in bundle.items() if k != "payload"}, ensure_ascii=False))
    served = "\n".join(answers)
    assert not [p for p in people if p in served] and not [d for d in plain if d in served]

    # The chain: contract calls and events carry record digests and keyed ids of prescriptions and
    # requests, no person.
    chain = _chain_bytes(w3, first_block)
    assert chain  # the records' contract calls are in it
    for p in people:
        assert p.encode() not in chain, p
    for d in plain:
        assert bytes.fromhex(d) not in chain, d


def test_backup_names_no_person_in_clear(harness: Harness, tmp_path: Path) -> None:
    """The backup (``python -m gateway backup``) of a database holding a member's records: on SQLite a
    copy of the file, searched as bytes (PostgreSQL's dump is compressed: the table text above covers it)."""
    if not harness.settings.database_url.startswith("sqlite"):
        return
    from gateway.ops.backup import backup

    member = "M" + secrets.token_hex(4).upper()
    branch_id = "zb-" + secrets.token_hex(3)
    branch = harness.client("party-branch")
    rid = accepted(branch.submit("party.record", party_membership(branch_id, "入党申请人", None, member)))
    harness.wait_status(rid, "anchored", timeout=60)
    db = Database(harness.settings.database_url)
    try:
        info = backup(db, tmp_path / "backup")
    finally:
        db.dispose()
    assert info.records >= 1
    held = b"".join(p.read_bytes() for p in (tmp_path / "backup").iterdir())
    assert rid.encode() in held  # the record is in it
    assert member.encode() not in held and bytes.fromhex(sm3_hex(member.encode())) not in held
    assert sm3_hex(member.encode()).encode() not in held
