"""存证证明 (issue 21): certificates of each domain's records from a real gateway and chain, over HTTP and
through `provenance certificate`, rendered by poppler (`pdftoppm`), their QR codes decoded, verified with
`provenance verify FILE.pdf`, and refused when the embedded bundle or a printed digest was altered."""

from __future__ import annotations

import io
import json
import secrets
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from provenance.certificate_check import read_certificate
from provenance.cli import main
from tests.kit.batches import submit_when_seen
from tests.kit.gas import gas_batch, gas_series, register_logger
from tests.kit.gateway import (
    Harness,
    hj212_packets,
    party_meeting,
    rx_dispense,
    rx_issue,
    share_request,
    trust_path,
)

pytestmark = pytest.mark.timeout(400)


def _records(harness: Harness) -> dict[str, str]:
    """One anchored record per domain: kind -> record id."""
    rx = "RXC" + secrets.token_hex(4)
    submitted = {
        "rx.issue": harness.client("hospital-1").submit("rx.issue", rx_issue(rx)),
        "share.request": harness.client("data-user").submit(
            "share.request", share_request("REQ-C" + secrets.token_hex(4), "data-user")
        ),
        "env.reading": harness.client("station-1").submit("env.reading", hj212_packets(1)[0]),
        "party.record": harness.client("party-branch").submit(
            # A subject holding a long hex run: printed in the CJK font, it is no printed value to check.
            "party.record",
            party_meeting("BR-" + secrets.token_hex(24), "MTG-1"),
        ),
    }
    # The gas network's batch, by a data logger the utility registered (a domain of the registry's).
    logger = register_logger(harness.network)
    start = (datetime.now(UTC) - timedelta(seconds=80)).replace(microsecond=0)
    batch = gas_batch(gas_series(start, 20), logger, start, start + timedelta(seconds=20))
    submitted["gas.batch"] = submit_when_seen(harness.client("gas-utility"), "gas.batch", batch)
    ids = {}
    for kind, r in submitted.items():
        assert r.status_code in (200, 202), (kind, r.text)
        ids[kind] = r.json()["id"]
    for rid in ids.values():
        harness.wait_status(rid, "anchored", timeout=90)
    return ids


@pytest.fixture(scope="module")
def records(harness: Harness) -> dict[str, str]:
    return _records(harness)


def _png(pdf: Path, tmp: Path) -> Path:
    """Page 1 rendered by poppler: the PDF is well-formed for a reader other than ours."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.fail("pdftoppm is missing: install Debian's poppler-utils (make setup / .ci/run do)")
    subprocess.run(
        [pdftoppm, "-r", "110", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp / "page")], check=True
    )
    (png,) = tmp.glob("page-*.png")
    return png


def _qr(png: Path) -> str:
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(png))
    assert [b.format for b in found] == [zxingcpp.BarcodeFormat.QRCode], found
    return str(found[0].text)


def _verify(pdf: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    rc = main(["verify", str(pdf), "--json", *extra])
    return rc, json.loads(capsys.readouterr().out)


def _certificate(harness: Harness, token: Path, target: str, out: Path, trust: str, *extra: str) -> int:
    """``provenance certificate`` of ``target`` into ``out``, fetched from the gateway with ``token``."""
    args = ["--out", str(out), "--gateway", harness.server.url, "--token-file", str(token), "--trust", trust]
    return main(["certificate", target, *args, *extra])


def test_certificate_of_each_domain_renders_decodes_and_verifies(
    harness: Harness, records: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    regulator = harness.client("regulator")
    trust = trust_path(harness.network)
    for kind, rid in records.items():
        r = regulator.get(
            f"/api/v1/records/{rid}/certificate", params={"lang": "zh" if "." in kind else "en"}
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        pdf = tmp_path / f"{kind}.pdf"
        pdf.write_bytes(r.content)
        (page,) = read_certificate(r.content)
        # Chinese by default: the labels are text of the PDF (a CJK font embedded), not boxes.
        assert "区块链存证证明" in page.text and "记录编号" in page.text
        assert json.loads(page.bundle)["digest"] == rid
        shot = tmp_path / kind
        shot.mkdir()
        assert _qr(_png(pdf, shot)) == f"{harness.server.url}/verify/?q={rid}"
        rc, doc = _verify(pdf, "--trust", str(trust), capsys=capsys)
        assert rc == 0, doc
        (entry,) = doc["pages"]
        assert entry["verdict"] == "verified" and entry["record"] == rid
        assert entry["steps"][-1] == {"step": "certificate", "status": "passed", "detail": ""}
    # English on request.
    r = regulator.get(f"/api/v1/records/{records['env.reading']}/certificate", params={"lang": "en"})
    (page,) = read_certificate(r.content)
    assert "Certificate of Evidence Preservation" in page.text and "区块链" not in page.text


def test_altered_bundle_or_printed_digest_fails_naming_the_step(
    harness: Harness, records: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject, StreamObject

    rid = records["rx.issue"]
    original = harness.client("auditor").get(f"/api/v1/records/{rid}/certificate").content
    trust = ["--trust", str(trust_path(harness.network))]

    # 1. The embedded bundle's signed record altered (another subject): step "digest" fails.
    (page,) = read_certificate(original)
    doc = json.loads(page.bundle)
    doc["record"]["subject"] = doc["record"]["subject"] + "X"
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(original)))
    names = writer._root_object["/Names"]["/EmbeddedFiles"]["/Names"]
    spec = names[1].get_object()
    stream = spec["/EF"]["/F"].get_object()
    stream.set_data(json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    altered = tmp_path / "altered-bundle.pdf"
    with altered.open("wb") as f:
        writer.write(f)
    rc, out = _verify(altered, *trust, capsys=capsys)
    assert rc == 1 and out["pages"][0]["failed_step"] == "digest", out
    assert out["pages"][0]["code"] == "DIGEST_MISMATCH"

    # 2. The printed record id edited on the page (the bundle intact): step "certificate" fails.
    reader = PdfReader(io.BytesIO(original))
    writer = PdfWriter(clone_from=reader)
    content = writer.pages[0].get_contents()
    assert content is not None
    data = content.get_data()
    assert rid.encode() in data  # Courier: the characters printed are the text of the page
    forged = ("f" if rid[0] != "f" else "e") + rid[1:]
    new = StreamObject()
    new.set_data(data.replace(rid.encode(), forged.encode()))
    writer.pages[0][NameObject("/Contents")] = writer._add_object(new)
    edited = tmp_path / "edited-digest.pdf"
    with edited.open("wb") as f:
        writer.write(f)
    rc, out = _verify(edited, *trust, capsys=capsys)
    (entry,) = out["pages"]
    assert rc == 1 and entry["failed_step"] == "certificate" and entry["code"] == "CERTIFICATE_MISMATCH"
    assert forged in entry["message"]

    # 4. The genuine certificate with export lines after its end, or inside it before an %%EOF added after
    # them (the ninth attack: "verified", exit 0, the lines never looked at; the page, which reads no PDF,
    # took them for an export): no certificate.
    line = json.dumps(json.loads(page.bundle), ensure_ascii=False, separators=(",", ":")).encode()
    cases = (
        (b"\n" + line + b"\n", "bytes follow the PDF's end"),
        (b"\n" + line + b"\n%%EOF\n", "the PDF holds lines of evidence bundles"),
    )
    for tail, why in cases:
        polyglot = tmp_path / "polyglot.pdf"
        polyglot.write_bytes(original + tail)
        capsys.readouterr()
        assert main(["verify", *trust, str(polyglot)]) == 2, why
        said = " ".join(capsys.readouterr().err.split())
        assert "CERTIFICATE_INVALID" in said and why in said, said

    # 3. A PDF without an embedded bundle is no certificate (exit 2, one line).
    bare = PdfWriter()
    bare.add_blank_page(200, 200)
    empty = tmp_path / "bare.pdf"
    with empty.open("wb") as f:
        bare.write(f)
    capsys.readouterr()
    assert main(["verify", str(empty)]) == 2
    assert "CERTIFICATE_INVALID" in capsys.readouterr().err


def test_cli_certificate_of_a_subject_and_who_may_ask(
    harness: Harness, records: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "regulator.token"
    token.write_text(harness.tokens["regulator"])
    trust = str(trust_path(harness.network))
    rid = records["rx.issue"]
    first = harness.client("regulator").get(f"/api/v1/records/{rid}/certificate").content
    subject = json.loads(read_certificate(first)[0].bundle)["record"]["subject"]
    # A dispense of that prescription, then the subject's certificate: one page per record, in order.
    r = harness.client("pharmacy-1").submit("rx.dispense", rx_dispense(subject.removeprefix("rx:")), prev=rid)
    assert r.status_code == 202, r.text
    dispensed = r.json()["id"]
    harness.wait_status(dispensed, "anchored", timeout=90)
    out = tmp_path / "subject.pdf"
    capsys.readouterr()
    rc = _certificate(harness, token, subject, out, trust, "--lang", "en")
    assert rc == 0, capsys.readouterr().err
    pages = read_certificate(out.read_bytes())
    assert [json.loads(p.bundle)["digest"] for p in pages] == [rid, dispensed]
    rc, doc = _verify(out, "--trust", trust, capsys=capsys)
    assert rc == 0 and [e["verdict"] for e in doc["pages"]] == ["verified", "verified"]
    # The record id form, Chinese by default; with --rpc the anchor is looked up on the chain.
    one = tmp_path / "one.pdf"
    rc = _certificate(harness, token, records["party.record"], one, trust, "--rpc", harness.network.rpc_url)
    assert rc == 0, capsys.readouterr().err
    (page,) = read_certificate(one.read_bytes())
    assert "区块链存证证明" in page.text
    # A record that does not verify with the reader's pins gets no certificate: a trust file that pins
    # another key for the hospital refuses the issue at step "signer", and writes nothing.
    doc = json.loads(Path(trust).read_text("utf-8"))
    keys = {o["id"]: o["keys"] for o in doc["orgs"]}
    for o in doc["orgs"]:
        if o["id"] == "hospital-1":
            o["keys"] = keys["party-branch"]
    wrong = tmp_path / "trust-wrong-hospital-key.json"
    wrong.write_text(json.dumps(doc, ensure_ascii=False))
    refused = tmp_path / "refused.pdf"
    capsys.readouterr()
    rc = _certificate(harness, token, rid, refused, str(wrong))
    err = capsys.readouterr().err
    assert rc == 1 and "CERTIFICATE_REFUSED" in err and "step 'signer'" in err, err
    assert not refused.exists()
    # Only auditors and regulators: a hospital's token is refused, as is no token.
    r = harness.client("hospital-1").get(f"/api/v1/records/{rid}/certificate")
    assert r.status_code == 403 and r.json()["error"]["code"] == "ROLE_FORBIDDEN"
    assert harness.http.get(f"/api/v1/records/{rid}/certificate").status_code == 401
    # Bad input: one line, exit 2.
    capsys.readouterr()
    assert main(["certificate", "not a record", "--out", str(one), "--gateway", harness.server.url]) == 2
    assert "FORMAT_INVALID" in capsys.readouterr().err


def _reembed(pdf: bytes, originals: dict[str, bytes]) -> bytes:
    """``pdf`` with the embedded files named in ``originals`` put back to those bytes (pypdf), as F1 did,
    their declared size too (the embedded files are held to the re-render's, /Params included)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject, NumberObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    names = writer._root_object["/Names"]["/EmbeddedFiles"]["/Names"]
    for name, spec in zip(names[::2], names[1::2], strict=True):
        if str(name) in originals:
            stream = spec.get_object()["/EF"]["/F"].get_object()
            stream.set_data(originals[str(name)])
            stream["/Params"][NameObject("/Size")] = NumberObject(len(originals[str(name)]))
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _rerendered(
    original: bytes,
    *,
    record: dict[str, str] | None = None,
    org_name: str | None = None,
    steps: str | None = None,
    forge_rendering: bool = False,
) -> bytes:
    """F1: a genuine certificate's page rendered again by ``render_certificate`` printing other claims, then
    its ORIGINAL bundle embedded again (the Courier hex unchanged). ``forge_rendering`` keeps the forged
    ``certificate.json`` too (the printed steps and name then agree with the embedded rendering inputs)."""
    from provenance.certificate import CertifiedRecord, render_certificate
    from provenance.verification.verify import StepResult, verdict

    (page,) = read_certificate(original)
    rendering = json.loads(page.rendering)
    fake = json.loads(page.bundle)
    fake["record"] |= record or {}
    (issued,) = rendering["pages"]
    report = [StepResult(s["step"], steps or s["status"]) for s in issued["steps"]]
    forged = render_certificate(
        [
            CertifiedRecord(
                bundle_json=json.dumps(fake, ensure_ascii=False),
                steps=report,
                verdict=verdict(report),
                org_name=issued["org_name"] if org_name is None else org_name,
            )
        ],
        lang=rendering["lang"],
        verify_base=rendering["verify_base"],
        issued_at=rendering["issued_at"],
        issuer=rendering["issuer"],
    )
    originals = {page.attachment: page.bundle}
    if not forge_rendering:
        originals["certificate.json"] = page.rendering
    return _reembed(forged, originals)


def test_rerendered_certificate_with_another_org_kind_subject_time_fails(
    harness: Harness, records: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """F1: a data user's genuine certificate re-rendered as the hospital's morphine prescription of
    2026-01-01, every step "passed", its own bundle embedded again: each misstated claim fails step
    ``certificate`` (CERTIFICATE_MISMATCH) naming the field; the genuine certificates (zh, en) verify."""
    rid = records["share.request"]
    trust = ["--trust", str(trust_path(harness.network))]
    auditor = harness.client("auditor")
    genuine = {
        lang: auditor.get(f"/api/v1/records/{rid}/certificate", params={"lang": lang})
        for lang in ("zh", "en")
    }
    for lang, r in genuine.items():
        assert r.status_code == 200, r.text
        path = tmp_path / f"genuine-{lang}.pdf"
        path.write_bytes(r.content)
        rc, out = _verify(path, *trust, capsys=capsys)
        assert rc == 0 and out["pages"][0]["verdict"] == "verified", out
        assert out["pages"][0]["steps"][-1]["status"] == "passed"
        # Re-rendering the genuine page from its own evidence changes nothing: the check is not one-sided.
        same = tmp_path / f"same-{lang}.pdf"
        same.write_bytes(_rerendered(r.content))
        rc, out = _verify(same, *trust, capsys=capsys)
        assert rc == 0, out
    original = genuine["zh"].content
    attacks: list[tuple[str, bytes]] = [
        ("org", _rerendered(original, record={"org": "hospital-1"}, org_name="山城第一人民医院")),
        ("kind", _rerendered(original, record={"kind": "rx.issue"})),
        ("subject", _rerendered(original, record={"subject": "rx:RX-MORPHINE-0001"})),
        ("time", _rerendered(original, record={"timestamp": "2026-01-01T08:00:00.000Z"})),
        # The payload and the anchor were "not checked" at issue: printed "passed" now.
        ("step.payload", _rerendered(original, steps="passed")),
        # The same, with certificate.json forged to agree: the bundle holds no payload to have passed.
        ("step.payload", _rerendered(original, steps="passed", forge_rendering=True)),
        # Another name for the data user, in certificate.json too: not the name the trust file pins.
        ("org", _rerendered(original, org_name="山城第一人民医院", forge_rendering=True)),
    ]
    for i, (field, forged) in enumerate(attacks):
        path = tmp_path / f"forged-{i}.pdf"
        path.write_bytes(forged)
        assert read_certificate(forged)[0].bundle == read_certificate(original)[0].bundle
        rc, out = _verify(path, *trust, capsys=capsys)
        (entry,) = out["pages"]
        assert rc == 1 and entry["failed_step"] == "certificate", (field, entry)
        assert entry["code"] == "CERTIFICATE_MISMATCH" and entry["field"] == field, (field, entry)
        assert field in entry["message"] or field.removeprefix("step.") in entry["message"], entry
    # F1 as the attacker ran it, all four claims and the steps at once, through the CLI's own words.
    forged = tmp_path / "forged-f1.pdf"
    forged.write_bytes(
        _rerendered(
            original,
            record={
                "org": "hospital-1",
                "kind": "rx.issue",
                "subject": "rx:RX-MORPHINE-0001",
                "timestamp": "2026-01-01T08:00:00.000Z",
            },
            org_name="山城第一人民医院",
            steps="passed",
        )
    )
    capsys.readouterr()
    assert main(["verify", str(forged), *trust]) == 1
    captured = capsys.readouterr()
    assert "CERTIFICATE_MISMATCH" in captured.err and "verified with the pinned keys" not in captured.out


def _drawn_over(original: bytes, edit: str, *, incremental: bool = False) -> bytes:
    """Attack 7, finding 1: ``original`` with something drawn beside its page's content stream, by pypdf:
    ``stamps`` as the attacker did (three /Stamp annotations whose appearance streams paint another
    organisation, kind and subject over the printed ones), ``freetext`` (a /FreeText annotation),
    ``nothing`` (no change), ``contents`` (a second content stream painting over the organisation),
    ``optional`` (an optional content group in the catalog), ``form`` (an AcroForm), ``rotate`` (the
    page tree turned), ``font`` (the CJK font's glyph widths), ``qr`` (another QR code)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import (
        ArrayObject,
        DictionaryObject,
        FloatObject,
        NameObject,
        NumberObject,
        StreamObject,
        TextStringObject,
    )

    reader = PdfReader(io.BytesIO(original))
    w = PdfWriter(reader, incremental=True) if incremental else PdfWriter(clone_from=reader)
    page = w.pages[0]

    def name(n: str) -> NameObject:
        return NameObject(n)

    def rect(*xs: float) -> ArrayObject:
        return ArrayObject([FloatObject(x) for x in xs])

    def stream(data: bytes, **head: Any) -> Any:
        s = StreamObject()
        s.set_data(data)
        s.update({name(f"/{k}"): v for k, v in head.items()})
        return w._add_object(s)

    font = w._add_object(
        DictionaryObject({name("/Type"): name("/Font"), name("/Subtype"): name("/Type1"),
                          name("/BaseFont"): name("/Helvetica")})
    )  # fmt: skip

    def stamp(y: float, text: str) -> Any:
        ap = stream(
            f"1 1 1 rg 0 0 380 13 re f BT /F1 9 Tf 0 0 0 rg 0 3 Td ({text}) Tj ET".encode(),
            Type=name("/XObject"), Subtype=name("/Form"), BBox=rect(0, 0, 380, 13),
            Resources=DictionaryObject({name("/Font"): DictionaryObject({name("/F1"): font})}),
        )  # fmt: skip
        return w._add_object(
            DictionaryObject({name("/Type"): name("/Annot"), name("/Subtype"): name("/Stamp"),
                              name("/Rect"): rect(180, 640 - y, 560, 653 - y), name("/F"): NumberObject(4),
                              name("/AP"): DictionaryObject({name("/N"): ap})})
        )  # fmt: skip

    if edit == "stamps":
        page[name("/Annots")] = ArrayObject(
            [stamp(0, "Shancheng No.1 People's Hospital (hospital-1)"), stamp(14, "rx.issue"),
             stamp(28, "rx:RX-2026-000123")]
        )  # fmt: skip
    elif edit == "freetext":
        note = DictionaryObject(
            {name("/Type"): name("/Annot"), name("/Subtype"): name("/FreeText"), name("/Rect"):
             rect(180, 640, 560, 653), name("/Contents"): TextStringObject("hospital-1"),
             name("/DA"): TextStringObject("/Helv 9 Tf 0 g")}
        )  # fmt: skip
        page[name("/Annots")] = ArrayObject([w._add_object(note)])
    elif edit == "contents":
        white = stream(b"q 1 1 1 rg 180 640 380 13 re f Q")
        page[name("/Contents")] = ArrayObject([page.raw_get("/Contents"), white])
    elif edit == "optional":
        group = w._add_object(
            DictionaryObject({name("/Type"): name("/OCG"), name("/Name"): TextStringObject("org")})
        )
        w._root_object[name("/OCProperties")] = DictionaryObject(
            {name("/OCGs"): ArrayObject([group]),
             name("/D"): DictionaryObject({name("/OFF"): ArrayObject([group])})}
        )  # fmt: skip
    elif edit == "font":  # the CJK font's glyphs spaced otherwise (its descendant's default width)
        fonts = page["/Resources"]["/Font"]
        cjk = next(f.get_object() for f in fonts.values() if f.get_object()["/Subtype"] == "/Type0")
        cjk["/DescendantFonts"][0].get_object()[name("/DW")] = NumberObject(2000)
    elif edit == "qr":  # another QR code: the image's pixels inverted
        images = page["/Resources"]["/XObject"]
        key, ref = next(iter(images.items()))
        head = {k: v for k, v in ref.get_object().items() if k not in ("/Filter", "/DecodeParms", "/Length")}
        images[key] = stream(
            bytes(255 - b for b in ref.get_object().get_data()), **{k[1:]: v for k, v in head.items()}
        )
    elif edit == "form":
        w._root_object[name("/AcroForm")] = DictionaryObject({name("/Fields"): ArrayObject()})
    elif edit == "rotate":
        w._root_object["/Pages"].get_object()[name("/Rotate")] = NumberObject(180)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_what_a_viewer_draws_beside_the_content_stream_fails(
    harness: Harness, records: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attack 7, finding 1: a genuine certificate with /Stamp annotations painting another organisation,
    kind and subject over the printed ones (one incremental update, pypdf, as the attacker did) passed
    every step. The verifier now holds everything drawn to the re-rendered PDF: each variant fails step
    ``certificate`` (CERTIFICATE_MISMATCH) naming the check; the genuine certificate still verifies."""
    rid = records["env.reading"]
    trust = ["--trust", str(trust_path(harness.network))]
    original = harness.client("auditor").get(f"/api/v1/records/{rid}/certificate", params={"lang": "en"})
    assert original.status_code == 200, original.text
    genuine = tmp_path / "genuine.pdf"
    genuine.write_bytes(original.content)
    rc, out = _verify(genuine, *trust, capsys=capsys)
    assert rc == 0 and out["pages"][0]["steps"][-1] == {
        "step": "certificate",
        "status": "passed",
        "detail": "",
    }
    # Written again by pypdf, nothing drawn changed: the renderer's drawing still (not a one-sided check).
    same = tmp_path / "same.pdf"
    same.write_bytes(_drawn_over(original.content, "none"))
    assert _verify(same, *trust, capsys=capsys)[0] == 0
    attacks = [
        ("stamps", True, "revision"),  # the attacker's file
        ("nothing", True, "revision"),  # an update changing nothing visible
        ("stamps", False, "annotation"),  # the same stamps, the file written as one revision
        ("freetext", False, "annotation"),
        ("contents", False, "contents"),
        ("optional", False, "optional_content"),
        ("form", False, "form"),
        ("font", False, "font"),
        ("qr", False, "resources"),
        ("rotate", False, "page_box"),  # inherited from the page tree
    ]
    for edit, incremental, field in attacks:
        forged = tmp_path / f"{edit}-{incremental}.pdf"
        forged.write_bytes(_drawn_over(original.content, edit, incremental=incremental))
        assert read_certificate(forged.read_bytes())[0].text == read_certificate(original.content)[0].text
        rc, out = _verify(forged, *trust, capsys=capsys)
        (entry,) = out["pages"]
        assert rc == 1 and entry["failed_step"] == "certificate", (edit, entry)
        assert entry["code"] == "CERTIFICATE_MISMATCH" and entry["field"] == field, (edit, entry)
        assert field in entry["message"], entry
