"""Prescription access codes: printed form, parsing as typed, the HMAC-SM3 digest (OpenSSL agrees)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from provenance.access_code import ALPHABET, FHIR_EXTENSION_URL, LABEL, AccessCode
from provenance.crypto import hmac_sm3
from provenance.errors import AccessCodeMalformed


def test_codes_are_random_printed_in_groups_and_parse_back_as_typed() -> None:
    codes = {AccessCode.new() for _ in range(200)}
    assert len(codes) == 200
    for code in list(codes)[:20]:
        printed = str(code)
        assert len(printed) == 24 and printed.count("-") == 4
        assert set(code.value) <= set(ALPHABET) and len(code.value) == 20
        assert AccessCode.parse(printed) == code
        assert AccessCode.parse(printed.lower().replace("-", " ")) == code
    # Crockford: O reads as 0, I and L as 1 (what a person copies from a slip).
    assert AccessCode.parse("O1IL-0000-0000-0000-0000").value == "0111" + "0" * 16
    assert "value" not in repr(AccessCode.new()) and AccessCode.new().value not in repr(AccessCode.new())


@pytest.mark.parametrize("text", ["", "ABC", "U" * 20, "0" * 21, "0000-0000-0000-0000-000!", "0" * 80])
def test_text_that_is_no_code_is_refused_with_its_code(text: str) -> None:
    with pytest.raises(AccessCodeMalformed) as e:
        AccessCode.parse(text)
    assert e.value.code == "ACCESS_CODE_MALFORMED"


def test_the_digest_is_keyed_by_the_code_and_bound_to_the_prescription() -> None:
    code = AccessCode.parse("7KQ2-M9XH-4TRB-WZ3C-8NDF")
    digest = code.digest("RX1")
    assert digest == hmac_sm3(b"7KQ2M9XH4TRBWZ3C8NDF", LABEL + b"RX1").hex()
    assert len(digest) == 64 and digest != code.digest("RX2") != AccessCode.new().digest("RX1")
    assert code.matches("RX1", digest) and not code.matches("RX2", digest) and not code.matches("RX1", None)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_hmac_sm3_agrees_with_openssl() -> None:
    key, data = b"7KQ2M9XH4TRBWZ3C8NDF", LABEL + "RX-处方-1".encode()
    out = subprocess.run(
        ["openssl", "mac", "-digest", "SM3", "-macopt", f"hexkey:{key.hex()}", "HMAC"],
        input=data,
        capture_output=True,
        check=True,
    )
    assert out.stdout.decode().strip().lower() == hmac_sm3(key, data).hex()


def test_attach_puts_one_digest_extension_on_a_copy() -> None:
    request = {"resourceType": "MedicationRequest", "extension": [{"url": "urn:x", "valueString": "keep"}]}
    first, second = AccessCode.new(), AccessCode.new()
    once = first.attach(request, "RX1")
    twice = second.attach(once, "RX1")
    assert request["extension"] == [{"url": "urn:x", "valueString": "keep"}]  # the input is unchanged
    assert twice["extension"] == [
        {"url": "urn:x", "valueString": "keep"},
        {"url": FHIR_EXTENSION_URL, "valueString": second.digest("RX1")},
    ]
