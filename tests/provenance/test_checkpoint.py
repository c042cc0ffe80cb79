"""Tests for provenance.log.checkpoint: C2SP signed-note checkpoints signed with SM2.

The golden notes in tests/assets/merkle/checkpoint/ were signed once with the test-fixture SM2 key
(SM2 signatures are randomised, so regenerating changes their bytes, not their meaning):
``PYTHONPATH=. .venv/bin/python tests/provenance/test_checkpoint.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.crypto import SM2PrivateKey
from provenance.errors import CheckpointInvalid, FormatError
from provenance.log.checkpoint import (
    MAX_NOTE_BYTES,
    SIGNATURE_TYPE,
    Checkpoint,
    NoteVerifier,
    key_id,
    parse_note,
    sign_checkpoint,
    verifier_key_string,
    verify_checkpoint,
)
from provenance.log.merkle import MerkleLog, verify_inclusion
from tests.provenance.openssl_cli import needs_openssl, openssl_verify

ASSETS = Path(__file__).resolve().parents[1] / "assets"
GOLDEN = ASSETS / "merkle" / "checkpoint"
FIXTURE_KEY = ASSETS / "crypto" / "test-fixture-sm2-key.pem"
ORIGIN = "shancheng.example/log"
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOG_KEY = SM2PrivateKey.generate()
OTHER_KEY = SM2PrivateKey.generate()
LOG = NoteVerifier(name=ORIGIN, public_key=LOG_KEY.public_key())


def note_for(cp: Checkpoint, key: SM2PrivateKey = LOG_KEY, name: str = ORIGIN) -> str:
    return sign_checkpoint(cp, name, key)


CP = Checkpoint(origin=ORIGIN, size=5, root=ROOT)
NOTE = note_for(CP)
BODY = NOTE.split("\n\n")[0] + "\n"  # the signed text, final newline included
SIG_LINE = NOTE.split("\n\n")[1]
SIG_B64 = SIG_LINE.split(" ")[-1].rstrip("\n")


def with_body(body: str) -> str:
    """A note whose body is replaced while the (now stale) signature line is kept."""
    return f"{body}\n{SIG_LINE}"


# --- format -------------------------------------------------------------------------------------------


def test_body_is_the_tlog_checkpoint_text() -> None:
    assert CP.body() == f"{ORIGIN}\n5\n{ROOT_B64}\n".encode()
    with_ext = Checkpoint(origin=ORIGIN, size=0, root=ROOT, extensions=("ext one", "ext-two"))
    assert with_ext.body() == f"{ORIGIN}\n0\n{ROOT_B64}\next one\next-two\n".encode()


def test_note_layout_key_id_and_signature() -> None:
    body, sigs = NOTE.split("\n\n")
    assert (body + "\n").encode() == CP.body()
    assert sigs.startswith(f"\u2014 {ORIGIN} ") and sigs.endswith("\n") and sigs.count("\n") == 1
    raw = base64.b64decode(sigs.split(" ")[2])
    der = LOG_KEY.public_key().to_der()
    assert len(der) == 91 and der[-65] == 0x04  # SPKI with the uncompressed point, as the design record says
    expected_id = hashlib.sha256(
        ORIGIN.encode() + b"\n" + b"\xffshancheng-provenance/sm2-sm3" + der
    ).digest()[:4]
    assert SIGNATURE_TYPE == b"\xffshancheng-provenance/sm2-sm3"
    assert raw[:4] == expected_id == key_id(ORIGIN, LOG_KEY.public_key()) == LOG.key_id
    assert LOG.key_hash == int.from_bytes(expected_id, "big")
    # The rest is a plain DER SM2 signature (default ID) over the body bytes, final newline included.
    LOG_KEY.public_key().verify(CP.body(), raw[4:])
    assert raw[4] == 0x30


def test_round_trip() -> None:
    cp, sigs = parse_note(NOTE)
    assert cp == CP
    assert len(sigs) == 1
    assert sigs[0].key_name == ORIGIN and sigs[0].key_id == LOG.key_id
    assert sigs[0].key_hash == LOG.key_hash
    assert verify_checkpoint(NOTE, LOG) == CP
    assert verify_checkpoint(NOTE.encode(), LOG, origin=ORIGIN) == CP


def test_checkpoint_of_a_log_proves_inclusion() -> None:
    log = MerkleLog.in_memory()
    for i in range(11):
        log.append(b"record %d" % i)
    note = note_for(Checkpoint(origin=ORIGIN, size=log.size, root=log.root()))
    cp = verify_checkpoint(note, LOG, origin=ORIGIN)
    verify_inclusion(log.leaf_hash(7), 7, cp.size, log.inclusion_proof(7, cp.size), cp.root)


@SETTINGS
@given(
    origin=st.text(st.characters(min_codepoint=0x20, blacklist_categories=["Cs"]), min_size=1, max_size=40),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(st.characters(min_codepoint=0x20, blacklist_categories=["Cs"]), min_size=1, max_size=20),
        max_size=3,
    ),
)
def test_any_valid_checkpoint_round_trips(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin=origin, size=size, root=root, extensions=tuple(extensions))
    note = note_for(cp)
    assert parse_note(note)[0] == cp
    assert verify_checkpoint(note, LOG) == cp
    assert parse_note(note)[0].body() == cp.body()


# --- verification failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tampered",
    [
        Checkpoint(origin=ORIGIN, size=6, root=ROOT),
        Checkpoint(origin=ORIGIN, size=4, root=ROOT),
        Checkpoint(origin=ORIGIN, size=5, root=bytes(31) + b"\x01"),
        Checkpoint(origin="shancheng.example/other-log", size=5, root=ROOT),
        Checkpoint(origin=ORIGIN, size=5, root=ROOT, extensions=("added",)),
    ],
    ids=["size-inflated", "size-rolled-back", "root-swapped", "origin-changed", "extension-added"],
)
def test_tampered_body_fails(tampered: Checkpoint) -> None:
    note = with_body(tampered.body().decode())
    assert parse_note(note)[0] == tampered
    with pytest.raises(
        CheckpointInvalid, match=rf"signature by key {ORIGIN} \([0-9a-f]{{8}}\) does not verify"
    ):
        verify_checkpoint(note, LOG)


def test_unknown_key_is_rejected() -> None:
    other = NoteVerifier(name="someone.example/else", public_key=OTHER_KEY.public_key())
    with pytest.raises(CheckpointInvalid, match=r"no signature from key someone.example/else") as exc:
        verify_checkpoint(NOTE, other)
    assert exc.value.step == "checkpoint"
    assert exc.value.details["signers"] == [f"{ORIGIN} ({LOG.key_hash:08x})"]


def test_same_name_other_key_is_not_our_key() -> None:
    # Signed by another key under the log's name: a different key ID, so it is not a signature by LOG.
    with pytest.raises(CheckpointInvalid, match=rf"no signature from key {ORIGIN}"):
        verify_checkpoint(note_for(CP, OTHER_KEY), LOG)


def test_signature_by_other_key_with_our_key_id_fails() -> None:
    forged = note_for(CP, OTHER_KEY)
    sig = base64.b64decode(forged.split(" ")[-1].rstrip("\n"))
    forged = NOTE.replace(SIG_B64, base64.b64encode(LOG.key_id + sig[4:]).decode())
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        verify_checkpoint(forged, LOG)


def test_other_signatures_are_ignored_but_a_bad_one_by_our_key_is_not() -> None:
    cosigned = NOTE + note_for(CP, OTHER_KEY, "witness.example/w1").split("\n\n")[1]
    assert len(parse_note(cosigned)[1]) == 2
    assert verify_checkpoint(cosigned, LOG) == CP
    stale = note_for(Checkpoint(origin=ORIGIN, size=4, root=ROOT)).split("\n\n")[1]
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        verify_checkpoint(NOTE + stale, LOG)


def test_wrong_origin_is_rejected() -> None:
    with pytest.raises(
        CheckpointInvalid, match=r"origin 'shancheng.example/log' is not the expected 'x.example/log'"
    ):
        verify_checkpoint(NOTE, LOG, origin="x.example/log")


def test_malformed_signature_der_is_a_bad_signature() -> None:
    note = NOTE.replace(SIG_B64, base64.b64encode(LOG.key_id + b"\x30\x00").decode())
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        verify_checkpoint(note, LOG)


# --- strict parsing -----------------------------------------------------------------------------------


def _sig_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


URL_SAFE_ROOT = base64.urlsafe_b64encode(bytes([0xFF]) * 32).decode()

MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("not-utf8", NOTE.encode().replace(b"log", b"l\xffg", 1), "not valid UTF-8"),
    ("lone-surrogate", NOTE.replace("log", "l\ud800g", 1), "lone surrogate"),
    ("crlf", NOTE.replace("\n", "\r\n"), "control character U\\+000D"),
    ("tab-in-origin", NOTE.replace(ORIGIN, "a\tb", 1), "control character U\\+0009"),
    ("nul", NOTE.replace("5", "5\x00", 1), "control character U\\+0000"),
    ("no-final-newline", NOTE[:-1], "does not end with a newline"),
    ("no-blank-line", NOTE.replace("\n\n", "\n"), "no blank line"),
    ("no-signatures", BODY + "\n", "no signature lines"),
    ("empty", "", "does not end with a newline"),
    ("ascii-dash", NOTE.replace("\u2014", "-"), "signature line 1 is not '— <key name> <base64 signature>'"),
    ("no-space-after-dash", NOTE.replace("\u2014 ", "\u2014"), "signature line 1 is not"),
    ("extra-field", NOTE[:-1] + " extra\n", "signature line 1 is not"),
    ("double-space", NOTE.replace(f"{ORIGIN} ", f"{ORIGIN}  "), "signature line 1 is not"),
    (
        "plus-in-key-name",
        NOTE.replace(f"\u2014 {ORIGIN}", "\u2014 a+b"),
        "signature line 1: key name 'a\\+b'",
    ),
    ("nbsp-in-key-name", NOTE.replace(f"\u2014 {ORIGIN}", "\u2014 a\u00a0b"), "must not contain spaces"),
    ("sig-not-base64", NOTE.replace(SIG_B64, "!!!!"), "signature line 1 is not valid"),
    (
        "sig-non-canonical-base64",
        NOTE.replace(SIG_B64, "AAAAAAB="),
        "signature line 1 is not canonical base64",
    ),
    ("sig-unpadded", NOTE.replace(SIG_B64, "AAAAAAA"), "not valid base64"),
    ("sig-too-short", NOTE.replace(SIG_B64, _sig_b64(b"abcd")), "too short"),
    ("too-many-signatures", NOTE + SIG_LINE * 100, "101 signature lines, at most 100"),
    ("size-leading-zero", with_body(f"{ORIGIN}\n05\n{ROOT_B64}\n"), "'05' is not a decimal number without"),
    ("size-negative", with_body(f"{ORIGIN}\n-1\n{ROOT_B64}\n"), "'-1' is not a decimal"),
    ("size-plus", with_body(f"{ORIGIN}\n+5\n{ROOT_B64}\n"), "'\\+5' is not a decimal"),
    ("size-hex", with_body(f"{ORIGIN}\n0x5\n{ROOT_B64}\n"), "is not a decimal"),
    ("size-underscore", with_body(f"{ORIGIN}\n1_000\n{ROOT_B64}\n"), "is not a decimal"),
    ("size-arabic-indic", with_body(f"{ORIGIN}\n\u0665\n{ROOT_B64}\n"), "is not a decimal"),
    ("size-space", with_body(f"{ORIGIN}\n 5\n{ROOT_B64}\n"), "is not a decimal"),
    ("size-empty", with_body(f"{ORIGIN}\n\n{ROOT_B64}\n"), "is not a decimal"),
    ("size-2-to-64", with_body(f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n"), "does not fit in 64 bits"),
    ("size-5000-digits", with_body(f"{ORIGIN}\n{'9' * 5000}\n{ROOT_B64}\n"), "does not fit in 64 bits"),
    ("root-not-base64", with_body(f"{ORIGIN}\n5\n{ROOT_B64[:-1]}*\n"), "root hash is not valid base64"),
    ("root-url-safe-base64", with_body(f"{ORIGIN}\n5\n{URL_SAFE_ROOT}\n"), "root hash is not valid base64"),
    (
        "root-31-bytes",
        with_body(f"{ORIGIN}\n5\n{_sig_b64(bytes(31))}\n"),
        "root hash is 31 bytes, expected 32",
    ),
    (
        "root-33-bytes",
        with_body(f"{ORIGIN}\n5\n{_sig_b64(bytes(33))}\n"),
        "root hash is 33 bytes, expected 32",
    ),
    ("empty-origin", with_body(f"\n5\n{ROOT_B64}\n"), "origin line is empty"),
    ("two-lines", with_body(f"{ORIGIN}\n5\n"), "checkpoint body has 2 lines"),
    ("empty-extension", with_body(f"{ORIGIN}\n5\n{ROOT_B64}\n\next\n"), "extension line 1 is empty"),
    (
        "too-many-extensions",
        with_body(f"{ORIGIN}\n5\n{ROOT_B64}\n" + "e\n" * 17),
        "17 extension lines, at most 16",
    ),
    ("too-big", NOTE + SIG_LINE * (MAX_NOTE_BYTES // len(SIG_LINE)), "more than 1048576"),
]


@pytest.mark.parametrize(
    ("note", "message"), [(n, m) for _, n, m in MALFORMED], ids=[i for i, _, _ in MALFORMED]
)
def test_malformed_notes_are_rejected(note: str | bytes, message: str) -> None:
    with pytest.raises(CheckpointInvalid, match=message):
        parse_note(note)
    with pytest.raises(CheckpointInvalid, match=message):
        verify_checkpoint(note, LOG)


def test_too_big_bytes_note_is_rejected_before_decoding() -> None:
    with pytest.raises(CheckpointInvalid, match="more than"):
        parse_note(b"\xff" * (MAX_NOTE_BYTES + 1))


def test_blank_lines_in_the_text_split_at_the_last_one() -> None:
    # signed-note: the text may hold blank lines and ends at the last one; a checkpoint body may not.
    with pytest.raises(CheckpointInvalid, match="extension line 1 is empty"):
        parse_note(f"{BODY}\nmore\n\n{SIG_LINE}")


def _canonical_or_rejected(note: str | bytes) -> None:
    """Parsing either fails with CheckpointInvalid or is exact: re-encoding gives back the same note."""
    try:
        cp, sigs = parse_note(note)
    except CheckpointInvalid:
        return
    text = note.decode() if isinstance(note, bytes) else note
    lines = "".join(f"\u2014 {s.key_name} {_sig_b64(s.key_id + s.signature)}\n" for s in sigs)
    assert f"{cp.body().decode()}\n{lines}" == text


@SETTINGS
@given(text=st.text(max_size=300))
def test_arbitrary_text_parses_exactly_or_raises_checkpoint_invalid(text: str) -> None:
    _canonical_or_rejected(text)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_parse_exactly_or_raise_checkpoint_invalid(data: bytes) -> None:
    _canonical_or_rejected(data)


@SETTINGS
@given(
    pos=st.integers(0, len(NOTE)),
    cut=st.integers(0, 3),
    insert=st.text(alphabet="\n \u2014+=/A0a5-", max_size=3),
)
def test_mutated_notes_verify_only_if_unchanged(pos: int, cut: int, insert: str) -> None:
    mutated = NOTE[:pos] + insert + NOTE[pos + cut :]
    _canonical_or_rejected(mutated)
    try:
        cp = verify_checkpoint(mutated, LOG)
    except CheckpointInvalid:
        return
    # Anything accepted must carry exactly the signed body.
    assert cp == CP
    assert mutated.split("\n\n")[0] + "\n" == BODY


# --- constructing checkpoints -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origin": "", "size": 1, "root": ROOT}, "origin must be a non-empty string"),
        ({"origin": "a\nb", "size": 1, "root": ROOT}, "origin must be one line"),
        ({"origin": "a\rb", "size": 1, "root": ROOT}, "origin must be one line"),
        ({"origin": "a\ud800", "size": 1, "root": ROOT}, "origin must be one line of UTF-8 text"),
        ({"origin": "a", "size": -1, "root": ROOT}, "tree size -1 is not an integer"),
        ({"origin": "a", "size": 2**64, "root": ROOT}, "is not an integer in"),
        ({"origin": "a", "size": True, "root": ROOT}, "tree size True"),
        ({"origin": "a", "size": 1, "root": ROOT[:31]}, "root is 31 bytes, expected 32"),
        ({"origin": "a", "size": 1, "root": ROOT.hex()}, "root is str bytes"),
        (
            {"origin": "a", "size": 1, "root": ROOT, "extensions": ("",)},
            "extension line 1 must be a non-empty",
        ),
        ({"origin": "a", "size": 1, "root": ROOT, "extensions": ["x"]}, "must be a tuple"),
    ],
)
def test_checkpoint_rejects_bad_fields(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CheckpointInvalid, match=message):
        Checkpoint(**kwargs)  # type: ignore[arg-type]


def test_signing_rejects_a_bad_key_name() -> None:
    with pytest.raises(CheckpointInvalid, match="must not contain spaces"):
        sign_checkpoint(CP, "bad name", LOG_KEY)
    with pytest.raises(CheckpointInvalid, match="must not contain spaces, '\\+'"):
        sign_checkpoint(CP, "a+b", LOG_KEY)
    with pytest.raises(CheckpointInvalid, match="must not contain"):
        sign_checkpoint(CP, "a\ud800", LOG_KEY)
    with pytest.raises(CheckpointInvalid, match="non-empty"):
        NoteVerifier(name="", public_key=LOG_KEY.public_key())


# --- verifier keys ------------------------------------------------------------------------------------


def test_vkey_round_trip() -> None:
    vkey = LOG.vkey()
    name, hash_hex, key_b64 = vkey.split("+", 2)
    assert name == ORIGIN and hash_hex == f"{LOG.key_hash:08x}"
    assert base64.b64decode(key_b64) == SIGNATURE_TYPE + LOG_KEY.public_key().to_der()
    assert verifier_key_string(ORIGIN, LOG_KEY.public_key()) == vkey
    parsed = NoteVerifier.from_vkey(vkey + "\n")
    assert parsed == LOG and parsed.key_id == LOG.key_id
    assert verify_checkpoint(NOTE, parsed) == CP


def _vkey_with(*, name: str | None = None, hash_hex: str | None = None, key_b64: str | None = None) -> str:
    n, h, k = LOG.vkey().split("+", 2)
    return f"{name or n}+{hash_hex or h}+{key_b64 or k}"


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        (LOG.vkey().replace("+", "-"), "is not '<name>\\+<hash>\\+<base64 key>'"),
        (_vkey_with(hash_hex="0000000g"), "is not 8 lowercase hex digits"),
        (_vkey_with(hash_hex="ABCDEF01"), "is not 8 lowercase hex digits"),
        (_vkey_with(hash_hex="1234567"), "is not 8 lowercase hex digits"),
        (_vkey_with(hash_hex=f"{LOG.key_hash ^ 1:08x}"), "hash does not match its name and public key"),
        (_vkey_with(name="other.example/log"), "hash does not match its name and public key"),
        (_vkey_with(key_b64=_sig_b64(b"\x01" + bytes(32))), "not an SM2 note key"),
        (_vkey_with(key_b64=_sig_b64(SIGNATURE_TYPE + b"junk")), "verifier key is invalid"),
        (_vkey_with(key_b64="@@@@"), "invalid: verifier key is not valid base64"),
        (_vkey_with(name="a b"), "key name 'a b' must not contain spaces"),
    ],
    ids=[
        "no-plus",
        "bad-hex",
        "upper-hex",
        "short-hex",
        "wrong-hash",
        "renamed",
        "ed25519-type",
        "bad-der",
        "bad-base64",
        "space-in-name",
    ],
)
def test_vkey_rejections(vkey: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        NoteVerifier.from_vkey(vkey)


# --- golden files and interop -------------------------------------------------------------------------


def test_golden_note_verifies_with_the_committed_vkey() -> None:
    fixture = SM2PrivateKey.from_pem(FIXTURE_KEY.read_bytes())
    verifier = NoteVerifier.from_vkey((GOLDEN / "log.vkey").read_text())
    assert verifier == NoteVerifier(name=ORIGIN, public_key=fixture.public_key())
    vectors = json.loads((ASSETS / "merkle" / "sm3_vectors.json").read_text())
    cp = verify_checkpoint((GOLDEN / "valid.note").read_bytes(), verifier, origin=ORIGIN)
    assert cp == Checkpoint(origin=ORIGIN, size=8, root=bytes.fromhex(vectors["roots"][8]))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("size-rolled-back.note", "does not verify"),
        ("root-swapped.note", "does not verify"),
        ("signed-by-unknown-key.note", "no signature from key"),
        ("other-key-claims-log-key-id.note", "does not verify"),
    ],
)
def test_golden_attacks_are_rejected(name: str, message: str) -> None:
    verifier = NoteVerifier.from_vkey((GOLDEN / "log.vkey").read_text())
    with pytest.raises(CheckpointInvalid, match=message):
        verify_checkpoint((GOLDEN / name).read_bytes(), verifier)


@needs_openssl
def test_note_signature_verifies_with_openssl(tmp_path: Path) -> None:
    sig = base64.b64decode(SIG_B64)[4:]
    result = openssl_verify(tmp_path, LOG_KEY.public_key_pem(), CP.body(), sig)
    assert result.returncode == 0, result.stderr + result.stdout


def _write_golden() -> None:
    fixture = SM2PrivateKey.from_pem(FIXTURE_KEY.read_bytes())
    other = SM2PrivateKey.generate()
    vectors = json.loads((ASSETS / "merkle" / "sm3_vectors.json").read_text())
    cp = Checkpoint(origin=ORIGIN, size=8, root=bytes.fromhex(vectors["roots"][8]))
    valid = sign_checkpoint(cp, ORIGIN, fixture)
    sig_line = valid.split("\n\n")[1]
    older = Checkpoint(origin=ORIGIN, size=7, root=bytes.fromhex(vectors["roots"][7]))
    swapped = Checkpoint(origin=ORIGIN, size=8, root=bytes.fromhex(vectors["roots"][7]))
    forged_sig = base64.b64decode(sign_checkpoint(cp, ORIGIN, other).split(" ")[-1])[4:]
    fixture_id = key_id(ORIGIN, fixture.public_key())
    files = {
        "log.vkey": verifier_key_string(ORIGIN, fixture.public_key()) + "\n",
        "valid.note": valid,
        "size-rolled-back.note": older.body().decode() + "\n" + sig_line,
        "root-swapped.note": swapped.body().decode() + "\n" + sig_line,
        "signed-by-unknown-key.note": sign_checkpoint(cp, ORIGIN, other),
        "other-key-claims-log-key-id.note": cp.body().decode()
        + f"\n\u2014 {ORIGIN} {base64.b64encode(fixture_id + forged_sig).decode()}\n",
    }
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (GOLDEN / name).write_text(text, encoding="utf-8")
        print(f"wrote {GOLDEN / name}")


if __name__ == "__main__":
    _write_golden()
