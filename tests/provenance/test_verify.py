"""The verifier against real keys, a real SM3 log and real checkpoints; each attack names its step."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import fastjsonschema
import pytest

from provenance.crypto import SM2PrivateKey
from provenance.errors import (
    AnchorInvalid,
    CheckpointInvalid,
    DigestMismatch,
    PayloadDigestMismatch,
    ProofInvalid,
    RecordSignatureInvalid,
    SchemaInvalid,
    SignerInvalid,
    SignerRoleForbidden,
    VerifierFault,
)
from provenance.log.bundle import Anchor, EvidenceBundle, _validator, bundle_schema
from provenance.log.record_log import RecordLog
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import Envelope, SignedRecord, sign_envelope
from provenance.timestamps import format_timestamp
from provenance.verification.trust import LogKey, TrustStore
from provenance.verification.verify import StepResult, Verifier, verdict

HOSP = SM2PrivateKey.generate()
OTHER = SM2PrivateKey.generate()
LOG_KEY = SM2PrivateKey.generate()


def _trust(*, revoked_at: datetime | None = None) -> TrustStore:
    def org(org_id: str, key: SM2PrivateKey, revoked: datetime | None = None) -> OrgEntry:
        pem = key.public_key_pem().decode()
        return OrgEntry(org_id, "hospital", keys=(OrgKey(key.public_key(), pem, revoked_at=revoked),))

    return TrustStore(
        orgs={"hosp-1": org("hosp-1", HOSP, revoked_at), "hosp-2": org("hosp-2", OTHER)},
        logs=[LogKey("test-log", LOG_KEY.public_key(), LOG_KEY.public_key_pem().decode(), "test.local/log")],
    )


@pytest.fixture(scope="module")
def built():
    log = RecordLog.in_memory(origin="test.local/log", key_name="test-log", key=LOG_KEY)
    items = []
    for i in range(13):
        payload = {"n": i, "text": "阿莫西林胶囊"}
        env = Envelope.create(kind="rx.issue", subject=f"rx:{i}", org="hosp-1", payload=payload)
        signed = sign_envelope(env, HOSP)
        items.append((log.append(signed), signed, payload))
    cp, note = log.checkpoint()
    return log, items, cp, note


def _bundle(built, i=5, **kw) -> EvidenceBundle:
    log, items, cp, note = built
    index, signed, payload = items[i]
    anchor = Anchor(
        chain_id=20260,
        contract="0x" + "11" * 20,
        tx_hash="0x" + "22" * 32,
        block_number=42,
        block_hash="0x" + "33" * 32,
        tree_size=cp.size,
        root=cp.root,
    )
    b = log.bundle(
        signed=signed,
        leaf_index=index,
        signer_public_key_pem=HOSP.public_key_pem().decode(),
        note=note,
        tree_size=cp.size,
        payload=payload,
        anchor=anchor,
    )
    return replace(b, **kw) if kw else b


def _fails(
    bundle: EvidenceBundle, error: type[Exception], step: str, verifier: Verifier | None = None
) -> None:
    report: list[StepResult] = []
    with pytest.raises(error) as info:
        (verifier or Verifier.offline(_trust())).verify(bundle, report=report)
    assert info.value.step == step
    assert report[-1].step == step and report[-1].status == "failed"


def test_valid_bundle_every_step(built):
    b = _bundle(built)
    report: list[StepResult] = []
    Verifier.offline(_trust()).verify(b, report=report)
    assert [r.step for r in report] == [
        "digest",
        "payload",
        "signer",
        "signature",
        "checkpoint",
        "inclusion",
        "anchor",
    ]
    assert [r.status for r in report[:-1]] == ["passed"] * 6
    # Offline the anchor is not looked up: not checked, never passed; the keys were pinned: verified.
    assert report[-1].status == "skipped" and "offline" in report[-1].detail
    assert verdict(report) == "verified"
    # The JSON form round-trips through the schema and still verifies.
    again = EvidenceBundle.from_json(b.to_json())
    Verifier.offline(_trust()).verify(again)


def test_every_leaf_verifies(built):
    verifier = Verifier.offline(_trust())
    for i in range(13):
        verifier.verify(_bundle(built, i))


def test_unpinned_verification_warns(built):
    report: list[StepResult] = []
    Verifier().verify(_bundle(built), report=report)
    statuses = {r.step: r.status for r in report}
    assert statuses["signer"] == "warning" and statuses["checkpoint"] == "warning"


def test_withheld_payload_is_skipped_not_failed(built):
    b = _bundle(built)
    purged = EvidenceBundle.from_dict({k: v for k, v in b.to_dict().items() if k != "payload"})
    report: list[StepResult] = []
    Verifier.offline(_trust()).verify(purged, report=report)
    assert ("payload", "skipped") in [(r.step, r.status) for r in report]


def test_tampered_payload(built):
    _fails(_bundle(built, payload={"n": 5, "text": "阿莫西林胶囊 x10"}), PayloadDigestMismatch, "payload")


def test_wrong_digest(built):
    _fails(_bundle(built, digest="0" * 64), DigestMismatch, "digest")


def test_altered_envelope_with_matching_digest_fails_signature(built):
    b = _bundle(built)
    env = replace(b.signed.envelope, subject="rx:forged")
    signed = SignedRecord(envelope=env, signature=b.signed.signature)
    _fails(replace(b, signed=signed, digest=env.digest), RecordSignatureInvalid, "signature")


def test_forged_signature_bytes(built):
    b = _bundle(built)
    sig = bytearray(b.signed.signature)
    sig[-1] ^= 1
    _fails(
        replace(b, signed=SignedRecord(b.signed.envelope, bytes(sig))), RecordSignatureInvalid, "signature"
    )


def test_signature_by_another_orgs_key(built):
    b = _bundle(built)
    forged = SignedRecord(b.signed.envelope, OTHER.sign(b.signed.envelope.canonical()))
    bad = replace(b, signed=forged, signer_public_key=OTHER.public_key_pem().decode())
    _fails(bad, SignerInvalid, "signer")


def test_signer_org_mismatch(built):
    _fails(_bundle(built, signer_org="hosp-2"), SignerInvalid, "signer")


def test_key_revoked_before_record_time_fails_after_passes(built):
    b = _bundle(built)
    record_time = datetime.fromisoformat(b.signed.envelope.timestamp.replace("Z", "+00:00"))
    _fails(
        b, SignerInvalid, "signer", Verifier.offline(_trust(revoked_at=record_time - timedelta(seconds=1)))
    )
    Verifier.offline(_trust(revoked_at=record_time + timedelta(days=1))).verify(b)


def test_unknown_org(built):
    env = Envelope.create(
        kind="rx.issue",
        subject="rx:x",
        org="ghost",
        payload={},
        timestamp=format_timestamp(datetime.now(UTC)),
    )
    signed = sign_envelope(env, HOSP)
    b = _bundle(built, signed=signed, digest=signed.record_id, signer_org="ghost", payload={})
    _fails(b, SignerInvalid, "signer")


def test_wrong_inclusion_proof(built):
    b = _bundle(built)
    proof = list(b.inclusion_proof)
    proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    _fails(replace(b, inclusion_proof=tuple(proof)), ProofInvalid, "inclusion")


def test_wrong_leaf_index(built):
    _fails(_bundle(built, leaf_index=6), ProofInvalid, "inclusion")


def test_record_not_in_log(built):
    stranger = sign_envelope(Envelope.create(kind="rx.issue", subject="rx:5", org="hosp-1", payload={}), HOSP)
    _fails(_bundle(built, signed=stranger, digest=stranger.record_id, payload={}), ProofInvalid, "inclusion")


def test_checkpoint_by_unpinned_log_key(built):
    log, items, _, _ = built
    rogue = RecordLog.in_memory(origin=log.origin, key_name="test-log", key=OTHER)
    for _, signed, _ in items:
        rogue.append(signed)
    _, rogue_note = rogue.checkpoint()
    _fails(_bundle(built, checkpoint=rogue_note), CheckpointInvalid, "checkpoint")


def test_checkpoint_text_tampered(built):
    b = _bundle(built)
    lines = b.checkpoint.split("\n")
    lines[1] = str(int(lines[1]) + 1)
    _fails(replace(b, checkpoint="\n".join(lines)), CheckpointInvalid, "checkpoint")


def _resigned(note: str, flip: int) -> str:
    """The note with one byte of its signature flipped (the body, key name and key ID unchanged)."""
    body, line = note.rstrip("\n").split("\n\n")
    dash, name, sig = line.split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[flip] ^= 1
    return f"{body}\n\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"


def test_verified_notes_are_remembered_by_their_whole_text(built):
    """A note verified once is not verified again, but only the very same text: body and signatures."""
    verifier = Verifier.offline(_trust())
    b = _bundle(built)
    verifier.verify(b)
    _fails(replace(b, checkpoint=_resigned(b.checkpoint, -1)), CheckpointInvalid, "checkpoint", verifier)
    _fails(replace(b, checkpoint=_resigned(b.checkpoint, 0)), CheckpointInvalid, "checkpoint", verifier)
    verifier.verify(_bundle(built, 7))  # the genuine note, still remembered


def test_remembered_note_is_checked_again_for_another_log_key(built):
    # Unpinned, the log key comes from each bundle: the same note must not pass for a key that did not sign.
    verifier = Verifier()
    b = _bundle(built)
    verifier.verify(b)
    rogue = replace(b, log_key=("test-log", OTHER.public_key_pem().decode()))
    _fails(rogue, CheckpointInvalid, "checkpoint", verifier)


def test_checkpoint_size_differs_from_proof(built):
    _fails(_bundle(built, tree_size=12), CheckpointInvalid, "checkpoint")


def test_missing_anchor(built):
    _fails(_bundle(built, anchor=None), AnchorInvalid, "anchor")
    Verifier.offline(_trust(), require_anchor=False).verify(_bundle(built, anchor=None))


def test_anchor_for_another_root(built):
    b = _bundle(built)
    assert b.anchor is not None
    _fails(replace(b, anchor=replace(b.anchor, root=b"\x00" * 32)), AnchorInvalid, "anchor")


def test_schema_errors_name_the_path(built):
    d = _bundle(built).to_dict()
    d["log"]["leaf_index"] = -1
    with pytest.raises(SchemaInvalid) as info:
        EvidenceBundle.from_dict(d)
    assert info.value.details["path"] == "log/leaf_index"
    d = _bundle(built).to_dict()
    d["signature"] = "***"
    with pytest.raises(SchemaInvalid):
        EvidenceBundle.from_dict(d)
    with pytest.raises(SchemaInvalid):
        EvidenceBundle.from_dict([])


def test_inclusion_proof_base64_roundtrip(built):
    b = _bundle(built)
    d = b.to_dict()
    assert [base64.b64decode(p) for p in d["log"]["inclusion_proof"]] == list(b.inclusion_proof)


def _set(path: str, value: object):
    def mutate(d: dict) -> None:
        *parents, last = path.split("/")
        for p in parents:
            d = d[p]
        d[int(last) if isinstance(d, list) else last] = value

    return mutate


@pytest.mark.parametrize(
    "mutate",
    [
        _set("log/inclusion_proof/3", "***"),
        _set("log/inclusion_proof/0", 5),
        _set("log/inclusion_proof", ["QQ=="] * 65),
        _set("record/prev", "0" * 64),
        _set("record/prev", "xyz"),
        _set("record/prev", 1),
        _set("anchor", None),
        _set("anchor", {}),
        _set("anchor/root", "0x12"),
        _set("signature", "a b"),
        _set("digest", "A" * 64),
        _set("extra", 1),
        lambda d: None,
    ],
)
def test_compiled_validator_agrees_with_the_published_schema(built, mutate):
    """Refs are inlined before compiling (for speed): same verdicts, paths and rules as the schema itself."""

    def outcome(validate, d):
        try:
            validate(d)
        except fastjsonschema.JsonSchemaValueException as exc:
            return exc.name, exc.rule, exc.message
        return None

    d = _bundle(built).to_dict()
    mutate(d)
    assert outcome(_validator().compiled, d) == outcome(fastjsonschema.compile(bundle_schema()), d)


# --- issue 25: what the verifier may say, and to whom ---------------------------------------------------


def test_without_pinned_keys_only_consistent(built):
    """No trust file, or one pinning no log key: every step holds, yet the verdict is never "verified"."""
    report: list[StepResult] = []
    Verifier().verify(_bundle(built), report=report)
    assert verdict(report) == "consistent"
    assert {r.step: r.status for r in report}["signer"] == "warning"
    no_logs = replace(_trust(), logs=[])
    report = []
    Verifier(trust=no_logs).verify(_bundle(built), report=report)
    assert verdict(report) == "consistent"
    assert {r.step: r.status for r in report} == {
        "digest": "passed",
        "payload": "passed",
        "signer": "passed",
        "signature": "passed",
        "checkpoint": "warning",
        "inclusion": "passed",
        "anchor": "skipped",
    }


def test_a_role_that_may_not_record_the_kind_fails_the_signer_step(built):
    pharmacy = _trust()
    entry = pharmacy.orgs["hosp-1"]
    pharmacy.orgs["hosp-1"] = replace(entry, role="pharmacy")  # hosp-1's pinned role: pharmacy
    _fails(_bundle(built), SignerRoleForbidden, "signer", Verifier.offline(pharmacy))
    pharmacy.orgs["hosp-1"] = replace(entry, role="log_operator")
    with pytest.raises(SignerRoleForbidden) as info:
        Verifier.offline(pharmacy).verify(_bundle(built))
    assert info.value.code == "ROLE_FORBIDDEN" and info.value.details["kind"] == "rx.issue"


def test_the_pinned_origin_is_checked(built):
    other = _trust()
    other.logs[0] = replace(other.logs[0], origin="test.staging/log")
    _fails(_bundle(built), CheckpointInvalid, "checkpoint", Verifier.offline(other))


@pytest.mark.parametrize(
    ("chain", "detail"),
    [
        ({"chain_id": 1}, "pins chain 1"),
        ({"chain_id": 20260, "provenance_log": "0x" + "12" * 20}, "pins Prov"),
    ],
)
def test_offline_an_anchor_on_another_chain_or_contract_fails(built, chain, detail):
    pinned = replace(_trust(), chain=chain)
    report: list[StepResult] = []
    with pytest.raises(AnchorInvalid, match=detail):
        Verifier.offline(pinned).verify(_bundle(built), report=report)
    assert report[-1].status == "failed"
    # The pinned chain and contract (case aside): still only "not checked" offline, never "passed".
    pinned = replace(_trust(), chain={"chain_id": 20260, "provenance_log": "0x" + "11" * 20})
    report = []
    Verifier.offline(pinned).verify(_bundle(built), report=report)
    assert report[-1].status == "skipped" and "pinned chain and contract" in report[-1].detail


def test_a_check_that_cannot_run_fails_its_step_never_crashes(built):
    """A typed bundle no parser would make (a float leaf index): the inclusion step fails, naming itself."""
    report: list[StepResult] = []
    with pytest.raises(VerifierFault) as info:
        Verifier.offline(_trust()).verify(_bundle(built, leaf_index=5.0), report=report)
    assert (info.value.step, info.value.code) == ("inclusion", "VERIFIER_FAULT")
    assert report[-1] == StepResult("inclusion", "failed", info.value.message)
