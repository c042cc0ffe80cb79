"""provenance.orgs (the one organisation/key model and validity rule), its one conversion from OrgRegistry's
answers, and provenance.manifest (the network manifest every reader goes through)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provenance.chain.registry import registry_org
from provenance.cli import main
from provenance.crypto import SM2PrivateKey
from provenance.errors import FormatError, NotFound
from provenance.files import FileUnreadable
from provenance.manifest import Manifest, ManifestOrg
from provenance.orgs import OrgEntry, OrgKey
from provenance.types import Role
from provenance.verification.trust import TrustStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_a_key_signs_from_valid_from_until_before_valid_until_and_revocation() -> None:
    pub = SM2PrivateKey.generate().public_key()
    key = OrgKey(public_key=pub, valid_from=T0, valid_until=T0 + 10 * SECOND, revoked_at=T0 + 5 * SECOND)
    assert [key.valid_at(T0 + n * SECOND) for n in (-1, 0, 4, 5, 9, 10)] == [
        False,  # before valid_from
        True,  # valid_from is inclusive
        True,
        False,  # revoked_at: a record dated at or after the revocation
        False,
        False,  # valid_until is exclusive
    ]
    unbounded = OrgKey(public_key=pub)
    assert unbounded.valid_at(datetime(1970, 1, 1, tzinfo=UTC)) and unbounded.valid_at(
        datetime.max.replace(tzinfo=UTC)
    )
    assert unbounded.pem == pub.to_pem().decode("ascii")
    org = OrgEntry(org_id="h1", role="hospital", keys=(key, unbounded))
    assert org.keys_at(T0 + 7 * SECOND) == [unbounded]
    # The trust file's form reads back to the same organisation.
    assert OrgEntry.from_dict(org.to_dict()) == org


def test_registry_answers_become_one_org_entry() -> None:
    good, other = SM2PrivateKey.generate().public_key(), SM2PrivateKey.generate().public_key()
    start = int(T0.timestamp())
    keys = [
        (good.raw(), start, 0, start + 100),  # 0: no end; revoked 100 s in
        (b"\x01" * 64, 0, 0, 0),  # not a point on the curve: can sign nothing
        (other.raw(), 0, 2**64 - 1, 0),  # any uint64 reads as a time (9999-12-31T23:59:59Z)
    ]
    org = registry_org("hospital-1", (Role.HOSPITAL, False, start, "First Hospital"), keys)
    assert (org.org_id, org.role, org.name, org.active) == ("hospital-1", "hospital", "First Hospital", False)
    assert [(k.public_key, k.index) for k in org.keys] == [(good, 0), (other, 2)]
    first, last = org.keys
    assert (first.valid_from, first.valid_until, first.revoked_at) == (T0, None, T0 + 100 * SECOND)
    assert last.valid_from is None and last.valid_until == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert first.valid_at(T0 + 99 * SECOND) and not first.valid_at(T0 + 100 * SECOND)


def _manifest(tmp_path: Path) -> Manifest:
    key = SM2PrivateKey.generate()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "h1.pem").write_bytes(key.to_pem())
    witness = SM2PrivateKey.generate().public_key().to_pem().decode("ascii")
    return Manifest(
        chain_id=20260,
        rpc_url="http://127.0.0.1:1",
        engine="embedded",
        contracts={"OrgRegistry": "0x" + "11" * 20, "ProvenanceLog": "0x" + "22" * 20},
        committee=[],
        orgs=[
            ManifestOrg(
                id="h1",
                role="hospital",
                name="H1",
                account="0x" + "33" * 20,
                account_key_file="keys/h1.account",
                sm2_key_file="keys/h1.pem",
                public_key=key.public_key_pem().decode("ascii"),
            )
        ],
        log={"origin": "o", "key_name": "k", "key_file": "keys/log.pem", "public_key": witness},
        created_at="2026-01-01T00:00:00Z",
        path=tmp_path / "manifest.json",
        witnesses=[{"org": "h1", "name": "w", "key_file": "keys/w.pem", "public_key": witness}],
        witness_quorum=1,
    )


def test_manifest_round_trip_keys_and_trust_file(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest.to_dict()))
    loaded = Manifest.load(path)
    assert loaded == manifest
    assert loaded.sm2_key("h1").public_key_pem().decode("ascii") == manifest.orgs[0].public_key
    assert loaded.contract("ProvenanceLog") == "0x" + "22" * 20
    with pytest.raises(NotFound):
        loaded.sm2_key("nobody")
    # The devnet's trust file: the witness's key among its organisation's, the policy beside them.
    store = TrustStore.from_dict(loaded.trust_dict())
    h1 = store.orgs["h1"]
    assert [k.pem for k in h1.keys] == [manifest.orgs[0].public_key, manifest.witnesses[0]["public_key"]]
    assert store.witnesses is not None and store.witnesses.quorum == 1


def test_a_manifest_that_is_not_one_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FileUnreadable):
        Manifest.load(tmp_path / "absent.json")
    doc = _manifest(tmp_path).to_dict()
    path = tmp_path / "manifest.json"
    for change, message in (
        (lambda d: d.update(version=2), "version 2, expected 1"),
        (lambda d: d.pop("contracts"), "has no 'contracts' object"),
        (lambda d: d["orgs"][0].pop("sm2_key_file"), "organisation 0 lacks sm2_key_file"),
        (lambda d: d.pop("rpc_url"), "it lacks 'rpc_url'"),
    ):
        bad = json.loads(json.dumps(doc))
        change(bad)
        path.write_text(json.dumps(bad))
        with pytest.raises(FormatError, match=message):
            Manifest.load(path)
    # Through the CLI: one line naming the problem, exit 2, before any network I/O.
    (tmp_path / "t.token").write_text("token\n")
    args = ["audit", "workflow", "--rpc", "http://127.0.0.1:1", "--gateway", "http://127.0.0.1:1"]
    args += ["--token-file", str(tmp_path / "t.token"), "--manifest", str(path)]
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "[FORMAT_INVALID]" in err and "is malformed" in err and "Traceback" not in err
    path.write_text(json.dumps(doc))  # well formed, but without the workflow contracts
    assert main(args) == 2
    assert "names no Prescriptions, DataSharing, PartyRecords" in " ".join(capsys.readouterr().err.split())
