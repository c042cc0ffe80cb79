"""Attack 8 on 存证证明 (docs/security.md, the seventh attack, finding 1's residual): a genuine certificate
given another associated file only in the catalog's /AF (PDF 2.0 / PDF/A-3 viewers list it as an
attachment), its own files repeated there, an embedded file's description or name changed, or another
document title verified. The verifier now holds the embedded and associated files and the document
information to the re-render. Each variant is the attacker's edit (pypdf, `kit8/work/pdf7.py`) of a
certificate fetched from a real gateway, verified by `provenance verify FILE.pdf`."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provenance.cli import main
from tests.gateway.test_certificates import _verify
from tests.kit.gateway import Harness, hj212_packets, trust_path

pytestmark = pytest.mark.timeout(400)


def _edited(original: bytes, edit: Callable[[Any], None]) -> bytes:
    """``original`` cloned by pypdf, ``edit`` applied to the writer, written as one revision."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(original)))
    edit(writer)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _af_extra_file(w: Any) -> None:
    """pdf7.py ``af_extra_file``: a "correction" naming the hospital, in /AF only."""
    from pypdf.generic import DictionaryObject, NameObject, StreamObject, TextStringObject

    data = "本证明更正：签发机构 山城第一人民医院 (hospital-1)，药品 盐酸吗啡注射液".encode()
    st = StreamObject()
    st.set_data(data)
    st[NameObject("/Type")] = NameObject("/EmbeddedFile")
    st[NameObject("/Subtype")] = NameObject("/text#2Fplain")
    spec = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Filespec"),
            NameObject("/F"): TextStringObject("更正说明.txt"),
            NameObject("/UF"): TextStringObject("更正说明.txt"),
            NameObject("/AFRelationship"): NameObject("/Supplement"),
            NameObject("/Desc"): TextStringObject("签发机构更正"),
            NameObject("/EF"): DictionaryObject({NameObject("/F"): w._add_object(st)}),
        }
    )
    w._root_object["/AF"].append(w._add_object(spec))


def _af_dup(w: Any) -> None:
    """pdf7.py ``af_dup``: the evidence bundle's file specification twice in /AF."""
    w._root_object["/AF"].append(w._root_object["/AF"][0])


def _filespec(w: Any) -> Any:
    return w._root_object["/Names"]["/EmbeddedFiles"]["/Names"][1].get_object()


def _filespec_desc(w: Any) -> None:
    """pdf7.py ``filespec_desc``: the bundle's description names the hospital."""
    from pypdf.generic import NameObject, TextStringObject

    _filespec(w)[NameObject("/Desc")] = TextStringObject("山城第一人民医院 签发的处方调剂证明")


def _filespec_uf(w: Any) -> None:
    """pdf7.py ``filespec_UF``: the bundle's Unicode file name names the hospital (the tree's key kept)."""
    from pypdf.generic import NameObject, TextStringObject

    _filespec(w)[NameObject("/UF")] = TextStringObject("山城第一人民医院-evidence.json")


def _info_title(w: Any) -> None:
    """pdf7.py ``info``: the title a viewer shows as the window's, and an author, name the hospital."""
    w.add_metadata({"/Title": "存证证明 — 山城第一人民医院 签发", "/Author": "山城第一人民医院"})


def _info_date(w: Any) -> None:
    """A creation date that is no date: free text where a viewer shows the date."""
    w.add_metadata({"/CreationDate": "山城第一人民医院 签发"})


def _kids_beside_names(w: Any) -> None:
    """A name tree's /Kids beside its /Names, holding a copy of the bundle's file specification."""
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    tree = w._root_object["/Names"]["/EmbeddedFiles"]
    leaf = DictionaryObject(
        {
            NameObject("/Names"): ArrayObject([TextStringObject("evidence-001.json"), tree["/Names"][1]]),
            NameObject("/Limits"): ArrayObject([TextStringObject("evidence-001.json")] * 2),
        }
    )
    tree[NameObject("/Kids")] = ArrayObject([w._add_object(leaf)])


def test_attached_files_and_document_information_are_the_renderers(
    harness: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = harness.client("station-1").submit("env.reading", hj212_packets(1)[0])
    assert r.status_code in (200, 202), r.text
    rid = r.json()["id"]
    harness.wait_status(rid, "anchored", timeout=90)
    original = harness.client("auditor").get(f"/api/v1/records/{rid}/certificate")
    assert original.status_code == 200, original.text
    trust = ["--trust", str(trust_path(harness.network))]
    # The genuine certificate, and the same written again by pypdf: verified (the check is not one-sided).
    for name, pdf in (
        ("genuine", original.content),
        ("rewritten", _edited(original.content, lambda w: None)),
    ):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(pdf)
        rc, out = _verify(path, *trust, capsys=capsys)
        assert rc == 0 and out["pages"][0]["steps"][-1]["status"] == "passed", (name, out)
    attacks: list[tuple[str, Callable[[Any], None], str]] = [
        ("af_extra_file", _af_extra_file, "associated_files"),  # the attacker's pdf_af_extra_file.pdf
        ("af_dup", _af_dup, "associated_files"),  # pdf_af_dup.pdf
        ("filespec_desc", _filespec_desc, "embedded_files"),
        ("info_title", _info_title, "info"),
        ("info_date", _info_date, "info"),
    ]
    for name, edit, field in attacks:
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(_edited(original.content, edit))
        rc, out = _verify(path, *trust, capsys=capsys)
        (entry,) = out["pages"]
        assert rc == 1 and entry["failed_step"] == "certificate", (name, entry)
        assert entry["code"] == "CERTIFICATE_MISMATCH" and entry["field"] == field, (name, entry)
        assert field in entry["message"], entry
    # Files the embedded files' list (pypdf's) names otherwise are no certificate's, as before: pdf7.py
    # ``filespec_UF`` (the Unicode name is the name listed) and the bundle again in a name tree's /Kids.
    for name, edit in (("filespec_UF", _filespec_uf), ("kids", _kids_beside_names)):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(_edited(original.content, edit))
        capsys.readouterr()
        assert main(["verify", str(path), *trust]) == 2, name
        assert "CERTIFICATE_INVALID" in capsys.readouterr().err, name
    # As the attacker ran it: the CLI's own words, no "verified".
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "af_extra_file.pdf"), *trust]) == 1
    captured = capsys.readouterr()
    assert "CERTIFICATE_MISMATCH" in captured.err and "verified with the pinned keys" not in captured.out
