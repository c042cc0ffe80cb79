"""`provenance receipt verify` against the second attack's golden receipts (tests/assets/bundles/generate.py
OTHER_ATTACKS), as a user runs it, and the receipt parser under hypothesis: never a traceback."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.crypto import SM2PrivateKey
from provenance.errors import ReceiptInvalid
from provenance.log.checkpoint import sign_note
from provenance.log.receipt import AcceptanceReceipt, parse_receipt, sign_receipt, verify_receipt
from provenance.verification.trust import TrustStore

BUNDLES = Path(__file__).resolve().parents[1] / "assets" / "bundles"
TRUST = BUNDLES / "trust.json"
RECORD = json.loads((BUNDLES / "valid.json").read_text("utf-8"))["digest"]


def receipt_verify(*args: str) -> tuple[int, str, str]:
    r = subprocess.run(
        [sys.executable, "-m", "provenance", "receipt", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout, r.stderr


def test_a_receipt_of_the_year_9999_is_one_line_receipt_invalid() -> None:
    """Finding 7: accepted at 9999-12-31T23:59:59.999Z plus the delay overflowed computing the deadline
    (an OverflowError traceback, with or without --json). Now RECEIPT_INVALID (check format), one line."""
    for extra in ((), ("--json",)):
        status, out, err = receipt_verify(
            str(BUNDLES / "receipt-year-9999.txt"), "--trust", str(TRUST), *extra
        )
        assert status == 1
        assert "[RECEIPT_INVALID] step 'receipt'" in err and "beyond the year 9999" in err
        assert err.count("error [") == 1 and err.startswith("error [RECEIPT_INVALID]")  # one message
        if extra:
            doc = json.loads(out)
            assert doc["ok"] is False and (doc["code"], doc["check"]) == ("RECEIPT_INVALID", "format")


def test_receipt_times_are_milliseconds_as_documented() -> None:
    """Finding 8: formats.md says the acceptance time is RFC 3339 UTC with milliseconds; a log-signed receipt
    without them was accepted. It is refused (one acceptance, one text: the batch leaf is built from it)."""
    status, out, _ = receipt_verify(
        str(BUNDLES / "receipt-time-without-milliseconds.txt"), "--trust", str(TRUST), "--json"
    )
    assert status == 1 and "with milliseconds" in json.loads(out)["message"]
    status, out, _ = receipt_verify(str(BUNDLES / "receipt-valid.txt"), "--trust", str(TRUST), "--json")
    assert status == 0 and json.loads(out)["accepted_at"] == "2026-11-20T08:00:01.250Z"


def test_receipt_verify_json_prints_json_on_failure_too() -> None:
    """Finding 8: `receipt verify --json` printed nothing on stdout when the receipt failed."""
    status, out, err = receipt_verify(
        str(BUNDLES / "receipt-valid.txt"), "--trust", str(TRUST), "--record", "00" * 32, "--json"
    )
    doc = json.loads(out)
    assert status == 1 and doc["ok"] is False
    assert (doc["code"], doc["failed_step"], doc["check"]) == ("RECEIPT_INVALID", "receipt", "record")
    assert doc["details"]["receipt_record"] == RECORD
    status, out, err = receipt_verify(
        str(BUNDLES / "receipt-valid.txt"), "--trust", "/nonexistent.json", "--json"
    )
    assert status == 2 and json.loads(out)["code"] == "TRUST_INVALID" and "TRUST_INVALID" in err


def test_a_bundle_keeps_the_promise_only_when_it_verifies(tmp_path: Path) -> None:
    """Finding 6: `receipt verify --bundle` said "kept" for a bundle `provenance verify` refuses (no anchor;
    a private, never anchored fork). It now runs the very verifier of `provenance verify` with the same trust
    file: an anchor is required unless --allow-unanchored, and only a verified bundle keeps the promise."""
    receipt = str(BUNDLES / "receipt-valid.txt")
    unanchored = str(BUNDLES / "receipt-kept-by-unanchored-bundle.json")
    status, out, err = receipt_verify(receipt, "--trust", str(TRUST), "--bundle", unanchored, "--json")
    doc = json.loads(out)
    assert status == 1 and doc["ok"] is False and "kept" not in doc
    assert (doc["code"], doc["check"]) == ("RECEIPT_INVALID", "kept")
    assert (doc["bundle"]["failed_step"], doc["bundle"]["code"]) == ("anchor", "ANCHOR_INVALID")
    assert "the bundle does not verify: step 'anchor' failed [ANCHOR_INVALID]" in " ".join(err.split())
    status, out, _ = receipt_verify(
        receipt, "--trust", str(TRUST), "--bundle", unanchored, "--allow-unanchored"
    )
    assert status == 0 and "kept" in out
    # The golden anchored bundle of the same record keeps it, verified like `provenance verify --trust`.
    status, out, _ = receipt_verify(
        receipt, "--trust", str(TRUST), "--bundle", str(BUNDLES / "valid.json"), "--json"
    )
    doc = json.loads(out)
    assert status == 0 and doc["kept"] is True and doc["bundle"]["verdict"] == "verified"
    # A bundle that verifies only against a trust file pinning no log key cannot keep a promise either: the
    # receipt needs the log key pinned, so the pin-less file fails at the receipt; a tampered bundle fails.
    status, out, _ = receipt_verify(
        receipt, "--trust", str(TRUST), "--bundle", str(BUNDLES / "tampered-payload.json"), "--json"
    )
    assert status == 1 and json.loads(out)["bundle"]["failed_step"] == "payload"


# --- the receipt parser under hypothesis ------------------------------------------------------------------

KEY = SM2PrivateKey.from_pem((BUNDLES / "keys" / "test-fixture-log.pem").read_bytes())
ORIGIN = "golden.shancheng.test/log"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_digits = st.text(alphabet="0123456789", min_size=1, max_size=4)
times = st.one_of(
    st.builds(
        lambda y, mo, d, h, mi, s, ms: f"{y}-{mo}-{d}T{h}:{mi}:{s}{ms}Z",
        _digits, _digits, _digits, _digits, _digits, _digits,
        st.sampled_from(["", ".1", ".12", ".123", ".1234", ".999999"]),
    ),
    st.sampled_from(["9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z", "2026-02-29T00:00:00.000Z"]),
    st.text(max_size=30),
)  # fmt: skip


@FUZZ
@given(
    record=st.one_of(st.just("ab" * 32), st.text(max_size=70)),
    accepted_at=times,
    delay=st.one_of(
        st.integers(min_value=-5, max_value=10**12), st.text(alphabet="0123456789x ", max_size=15)
    ),
    origin=st.one_of(st.just(ORIGIN), st.text(max_size=20)),
)
def test_signed_receipts_of_any_fields_verify_or_are_receipt_invalid(
    record: str, accepted_at: str, delay: Any, origin: str
) -> None:
    """Any receipt the log key signs, whatever its lines, parses and verifies, or raises ReceiptInvalid:
    never another exception (an OverflowError, a ValueError), never a receipt without a deadline."""
    body = f"{origin} accepted\n{record}\n{accepted_at}\n{delay}\n"
    try:
        note = sign_note(body.encode("utf-8", "surrogatepass"), ORIGIN, KEY)
    except (UnicodeError, ValueError):
        return  # not text a note can hold
    trust = TrustStore.load(BUNDLES / "trust.json")
    try:
        receipt = verify_receipt(note, trust)
    except ReceiptInvalid:
        return
    assert receipt.deadline >= receipt.deadline.replace(year=1)  # a real instant, computable
    assert sign_receipt(receipt, ORIGIN, KEY).startswith(body)


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_receipt_text_of_any_bytes_parses_or_is_receipt_invalid(text: str | bytes) -> None:
    with contextlib.suppress(ReceiptInvalid):
        parse_receipt(text)


@FUZZ
@given(accepted_at=times, delay=st.integers(min_value=0, max_value=366 * 24 * 3600))
def test_receipt_fields_build_or_are_receipt_invalid(accepted_at: str, delay: int) -> None:
    try:
        r = AcceptanceReceipt(
            origin=ORIGIN, record_id="cd" * 32, accepted_at=accepted_at, max_merge_delay=delay
        )
    except ReceiptInvalid:
        return
    assert r.deadline.year <= 9999
