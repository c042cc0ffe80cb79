"""Interoperability with the `openssl` command line (real subprocesses), for both backends."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provenance.crypto import SM2PrivateKey, SM2PublicKey, _curve, _der, available_backends
from provenance.errors import KeyInvalid, SignatureInvalid
from tests.provenance.openssl_cli import needs_openssl, openssl, openssl_signed, openssl_verify

pytestmark = needs_openssl

MSG = "溯源 record bytes\n".encode() + bytes(range(256))
VERIFIED = "Signature Verified Successfully"


@pytest.fixture(params=available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_our_signature_verifies_with_openssl(tmp_path: Path, backend: str) -> None:
    k = SM2PrivateKey.generate(backend=backend)
    sig = k.sign(MSG)
    ok = openssl_verify(tmp_path, k.public_key_pem(), MSG, sig)
    assert ok.returncode == 0 and VERIFIED in ok.stdout
    # And OpenSSL agrees it is bound to the ID and the message.
    assert openssl_verify(tmp_path, k.public_key_pem(), MSG, sig, distid="distid:other").returncode != 0
    assert openssl_verify(tmp_path, k.public_key_pem(), MSG + b"!", sig).returncode != 0


def test_our_other_id_signature_verifies_with_openssl(tmp_path: Path, backend: str) -> None:
    # Botan signs a non-default ID on its own path (e computed here, Botan's Raw mode): OpenSSL decides.
    k = SM2PrivateKey.generate(backend=backend)
    ident = "ALICE123@YAHOO.COM,x"
    sig = k.sign(MSG, id=ident.encode())
    ok = openssl_verify(tmp_path, k.public_key_pem(), MSG, sig, distid=f"distid:{ident}")
    assert ok.returncode == 0 and VERIFIED in ok.stdout
    assert openssl_verify(tmp_path, k.public_key_pem(), MSG, sig).returncode != 0


def test_openssl_signature_verifies_here(tmp_path: Path, backend: str) -> None:
    key, sig = openssl_signed(tmp_path, MSG)
    pub = SM2PrivateKey.from_pem(key.read_bytes(), backend=backend).public_key()
    pub.verify(MSG, sig)
    pub_pem = openssl("pkey", "-in", key, "-pubout").stdout
    SM2PublicKey.from_pem(pub_pem, backend=backend).verify(MSG, sig)
    with pytest.raises(SignatureInvalid):
        pub.verify(MSG, sig, id=b"")
    with pytest.raises(SignatureInvalid):
        pub.verify(MSG[:-1], sig)


def test_z_and_e_agree_with_openssl(tmp_path: Path) -> None:
    # OpenSSL signs M with its own Z; verifying that signature over *our* e = SM3(Z || M) as a bare
    # digest (no -rawin) succeeds only if our Z equals OpenSSL's.
    key, sig = openssl_signed(tmp_path, MSG)
    pub = SM2PrivateKey.from_pem(key.read_bytes()).public_key()
    e = _curve.message_digest(*pub.point, MSG)
    ok = openssl_verify(tmp_path, pub.to_pem(), e, sig, distid=None)
    assert ok.returncode == 0 and VERIFIED in ok.stdout
    other_e = _curve.message_digest(*pub.point, MSG, b"other")
    assert openssl_verify(tmp_path, pub.to_pem(), other_e, sig, distid=None).returncode != 0


def test_our_keys_readable_by_openssl(tmp_path: Path, backend: str) -> None:
    k = SM2PrivateKey.generate(backend=backend)
    (tmp_path / "key.pem").write_bytes(k.to_pem())
    (tmp_path / "pub.pem").write_bytes(k.public_key_pem())
    text = openssl("pkey", "-in", tmp_path / "key.pem", "-text", "-noout").stdout
    assert "ASN1 OID: SM2" in text
    assert k.private_bytes().hex() in text.replace(":", "").replace("\n", "").replace(" ", "")
    # OpenSSL re-encodes them byte for byte.
    assert openssl("pkey", "-in", tmp_path / "key.pem").stdout.encode() == k.to_pem()
    assert openssl("pkey", "-in", tmp_path / "key.pem", "-pubout").stdout.encode() == k.public_key_pem()
    assert openssl("pkey", "-pubin", "-in", tmp_path / "pub.pem").stdout.encode() == k.public_key_pem()
    der = subprocess.run(
        ["openssl", "pkey", "-in", tmp_path / "key.pem", "-outform", "DER"], capture_output=True, check=True
    ).stdout
    # `pkey -outform DER` writes SEC1 ECPrivateKey, not PKCS#8: from_der accepts both.
    assert SM2PrivateKey.from_der(der, backend=backend) == k


@pytest.mark.parametrize(
    "make",
    [
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2"],
        ["ecparam", "-genkey", "-name", "SM2"],
        ["ecparam", "-genkey", "-name", "SM2", "-noout"],
    ],
    ids=["genpkey", "ecparam", "ecparam-noout"],
)
def test_openssl_keys_load_here(tmp_path: Path, backend: str, make: list[str]) -> None:
    key = tmp_path / "key.pem"
    openssl(*make, "-out", key)
    k = SM2PrivateKey.from_pem(key.read_bytes(), backend=backend)
    assert k.public_key_pem() == openssl("pkey", "-in", key, "-pubout").stdout.encode()
    # SEC1 form as `openssl ec` writes it ("SM2 PRIVATE KEY", curve inside).
    openssl("ec", "-in", key, "-out", tmp_path / "sec1.pem")
    assert SM2PrivateKey.from_pem((tmp_path / "sec1.pem").read_bytes(), backend=backend) == k
    # A compressed public point.
    comp = openssl("ec", "-in", key, "-pubout", "-conv_form", "compressed").stdout
    assert SM2PublicKey.from_pem(comp, backend=backend) == k.public_key()


def test_explicit_curve_parameters_rejected(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    openssl("ecparam", "-genkey", "-name", "SM2", "-noout", "-out", key)
    explicit = openssl("pkey", "-in", key, "-pubout", check=False)
    assert explicit.returncode == 0
    ex = openssl("ec", "-in", key, "-pubout", "-param_enc", "explicit").stdout
    with pytest.raises(KeyInvalid, match="explicit"):
        SM2PublicKey.from_pem(ex)


def test_openssl_rejects_what_we_reject(tmp_path: Path) -> None:
    # Sanity: a signature whose r is pushed past n is rejected by OpenSSL too, not only by our range check.
    k = SM2PrivateKey.generate()

    r, s = _der.decode_signature(k.sign(MSG))
    pushed = _der.encode_signature(r + _curve.N, s)
    assert openssl_verify(tmp_path, k.public_key_pem(), MSG, pushed).returncode != 0
    with pytest.raises(SignatureInvalid):
        k.public_key().verify(MSG, pushed)
