"""Differential test: mutated bundles fail in the same step on the page as in the Python verifier.

The mutations model what a tamperer or a buggy producer does to each part of a bundle: the signature's DER,
the keys' PEM/SPKI, the checkpoint note's syntax and signatures, the proof, the anchor, the payload's
numbers. Each row of the page's export view carries the step it failed (``data-failed-step``).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from webui_support import BUNDLES, PageProbe

from provenance.bundle import EvidenceBundle
from provenance.checkpoint import Checkpoint, parse_note, sign_checkpoint
from provenance.crypto import SM2PrivateKey, SM2PublicKey
from provenance.errors import ProvenanceError, VerificationError
from provenance.trust import TrustStore
from provenance.verify import Verifier

Mutation = Callable[[dict[str, Any]], None]
SPKI_COMPRESSED_PREFIX = bytes.fromhex("3039301306072a8648ce3d020106082a811ccf5501822d032200")


def _pem(der: bytes) -> str:
    return f"-----BEGIN PUBLIC KEY-----\n{base64.b64encode(der).decode()}\n-----END PUBLIC KEY-----\n"


def _set(path: str, value: Any) -> Mutation:
    def apply(b: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = b
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return apply


def _mutations(valid: dict[str, Any]) -> Iterator[Mutation]:
    sig = base64.b64decode(valid["signature"])
    for i in (0, 1, 3, 5, len(sig) // 2, len(sig) - 1):
        flipped = bytearray(sig)
        flipped[i] ^= 0x80
        yield _set("signature", base64.b64encode(bytes(flipped)).decode())
    yield _set("signature", base64.b64encode(sig + b"\x00").decode())
    yield _set("signature", base64.b64encode(sig[:-1]).decode())
    yield _set("signature", "QR==")

    pub = SM2PublicKey.from_pem(valid["signer"]["public_key"])
    x, y = pub.point
    compressed = bytes([2 + (y & 1)]) + x.to_bytes(32, "big")
    wrong_parity = bytes([5 - compressed[0]]) + compressed[1:]
    yield _set("signer/public_key", _pem(SPKI_COMPRESSED_PREFIX + compressed))  # same key, compressed
    yield _set("signer/public_key", _pem(SPKI_COMPRESSED_PREFIX + wrong_parity))  # the other point
    p256 = pub.to_der().replace(bytes.fromhex("2a811ccf5501822d"), bytes.fromhex("2a8648ce3d030107"))
    yield _set("signer/public_key", _pem(p256))
    yield _set("signer/public_key", valid["signer"]["public_key"].replace("\n", "\r\n"))
    yield _set(
        "signer/public_key", "-----BEGIN X-----\nAAAA\n-----END X-----\n" + valid["signer"]["public_key"]
    )
    yield _set(
        "signer/public_key", valid["signer"]["public_key"] + "-----BEGIN X-----\nAAA\n-----END X-----\n"
    )
    yield _set("signer/public_key", "not a key")

    note = valid["log"]["checkpoint"]
    body, sig_line = note[: note.rindex("\n\n") + 1], note[note.rindex("\n\n") + 2 :]
    cp, _ = parse_note(note)
    other = SM2PrivateKey.from_pem((BUNDLES / "keys" / "test-fixture-attacker.pem").read_bytes())
    for variant in (
        note + "— witness AAAAAAAAAA==\n",  # another key's line: ignored
        body + "\n— witness AAAAAAAAAA==\n" + sig_line,
        note.replace("\n", "\r\n"),
        body + "extension\n\n" + sig_line,
        note.rstrip("\n"),
        body + sig_line,
        body + "\n" + sig_line.replace("— ", "-- "),
        body + "\n" + sig_line.replace(" ", "  ", 1),
        sign_checkpoint(Checkpoint(origin=cp.origin, size=cp.size, root=cp.root), cp.origin, other),
        note.replace(f"\n{cp.size}\n", f"\n0{cp.size}\n", 1),
        note + note,
    ):
        yield _set("log/checkpoint", variant)
    yield _set("log/log_key/name", "has space")
    yield _set("log/log_key/name", "another-log")
    yield _set("log/tree_size", valid["log"]["tree_size"] + 1)
    yield _set("log/leaf_index", valid["log"]["tree_size"])
    yield _set("log/leaf_index", 1)
    yield _set("log/inclusion_proof", valid["log"]["inclusion_proof"][:-1])
    yield _set("log/inclusion_proof/0", "AAAA")
    yield _set("anchor", None)
    yield _set("anchor/root", "0x" + valid["anchor"]["root"][2:].upper())
    yield _set("anchor/tree_size", valid["anchor"]["tree_size"] + 1)
    yield _set("payload", None)
    payloads: tuple[Any, ...] = ({"a": 2**53}, {"a": 2**53 - 1}, {"a": 1.0}, "text", 0, [])
    for payload in payloads:
        yield _set("payload", payload)
    for ts in ("2026-02-30T00:00:00Z", "2026-02-28T24:00:00Z", "2024-02-29T23:59:59.123456Z"):
        yield _set("record/timestamp", ts)
    yield _set("record/version", True)
    yield _set("extra", 1)
    yield _set("signer/key_id", "k")


def _python_step(b: dict[str, Any], trust: TrustStore | None = None) -> str:
    """The step `provenance verify [--trust]` names for a bundle ('' when every step holds)."""
    try:
        Verifier(trust=trust).verify(EvidenceBundle.from_dict(b))
    except VerificationError as exc:
        return exc.step
    except ProvenanceError:
        return "schema"
    return ""


def test_mutated_bundles_fail_in_the_same_step(probe: PageProbe, tmp_path: Path) -> None:
    valid = json.loads((BUNDLES / "valid.json").read_text("utf-8"))
    bundles = []
    for mutate in _mutations(valid):
        b = copy.deepcopy(valid)
        mutate(b)
        bundles.append(b)
    expected = [_python_step(b) for b in bundles]
    assert len(set(expected)) >= 7, "the mutations should reach most steps"

    export = tmp_path / "mutations.jsonl"
    export.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bundles), "utf-8")
    probe.open()
    probe.page.set_input_files("#file", str(export))
    rows = probe.page.locator(".export-result tbody tr")
    rows.first.wait_for()
    got = [r.get_attribute("data-failed-step") for r in rows.all()]
    mismatches = [(i, e, g) for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
    assert mismatches == [], "page and Python verifier disagree (row, python, page)"


TRUST_FILES = ("trust.json", "trust-hospital-key-expired.json", "trust-other-log.json")


@pytest.mark.parametrize("trust_file", TRUST_FILES)
def test_with_a_trust_file_same_verdicts_as_python(probe: PageProbe, tmp_path: Path, trust_file: str) -> None:
    """`provenance verify --trust FILE` and the page with the same trust file agree on every bundle."""
    fixture = json.loads((BUNDLES / "gateway-fixture.json").read_text("utf-8"))
    bundles = list(fixture["bundles"].values())
    valid = json.loads((BUNDLES / "valid.json").read_text("utf-8"))
    for mutate in _mutations(valid):
        b = copy.deepcopy(valid)
        mutate(b)
        bundles.append(b)
    store = TrustStore.load(BUNDLES / trust_file)
    expected = [_python_step(b, store) for b in bundles]

    export = tmp_path / "bundles.jsonl"
    export.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bundles), "utf-8")
    probe.open()
    page = probe.page
    page.set_input_files("#trust", str(BUNDLES / trust_file))
    page.locator("#trust-clear:not([hidden])").wait_for()
    page.set_input_files("#file", str(export))
    rows = page.locator(".export-result tbody tr")
    rows.first.wait_for()
    got = [r.get_attribute("data-failed-step") for r in rows.all()]
    mismatches = [(i, e, g) for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
    assert mismatches == [], "page and Python verifier disagree (row, python, page)"
