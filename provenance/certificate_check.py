"""Step ``certificate`` of `provenance verify FILE.pdf`: a 存证证明 says only what its embedded evidence says.

The verifier renders the pages again, with the same renderer, from the embedded bundles and the embedded
rendering inputs (``certificate.json``: language, issue time, issuer, the QR code's base, the organisation
names and the steps at issue), and requires each page's text to be that text (whitespace aside: line breaks
follow the font's metrics). The inputs themselves are held to the evidence: a step printed "passed" must be
one the embedded bundle supports now, the verdict is the steps', and with a trust file the organisation name
printed is the one the trust file pins. And what a viewer draws beside the text is the renderer's: the file
is one revision, its catalog and each page (content streams, fonts, the QR code's image, annotations, boxes)
equal the re-rendered PDF's (:func:`drawing_faults`).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.certificate import (
    ATTACHMENT_RE,
    LANGS,
    MAX_PAGES,
    RENDERING,
    RENDERING_FORMAT,
    CertifiedRecord,
    printed_values,
    render_certificate,
)
from provenance.errors import CertificateFontMissing, CertificateInvalid, CertificateMismatch, ProvenanceError
from provenance.log.bundle import EvidenceBundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import STEPS, StepResult, verdict

_STEPS = ("schema", "listing", *STEPS)  # the steps a page may print, in this order
_ISSUE_STATUSES = ("passed", "skipped", "warning")  # a failed step gets no certificate
_MAX_TEXT = 512
_WS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class CertificatePage:
    """What a certificate holds for one page: its embedded bundle's bytes and the page's text."""

    page: int
    attachment: str
    bundle: bytes
    text: str  # the page's text
    printed: str  # of that, what is printed in Courier: the values check_printed reads back
    rendering: bytes  # certificate.json: what the pages print beside the bundles (one for the document)


def read_certificate(pdf: bytes) -> list[CertificatePage]:
    """The pages of a certificate, each with its embedded bundle; CERTIFICATE_INVALID for a PDF that cannot
    be read or does not hold exactly one ``evidence-NNN.json`` per page and one ``certificate.json``."""
    from pypdf import PdfReader

    from provenance.verification.batch import starts_a_bundle

    # A certificate is the PDF alone: bytes after its end, or lines of an export anywhere in it, are what the
    # page (which reads no PDF) and a JSON Lines reader take for an export this check never looked at (the
    # ninth attack: a genuine certificate with altered bundles appended was "verified", exit 0).
    end = pdf.rfind(b"%%EOF")
    if end < 0 or pdf[end + 5 :].strip(b" \t\r\n\x00\x0c"):
        raise CertificateInvalid("bytes follow the PDF's end (%%EOF): a certificate is the PDF alone")
    if any(starts_a_bundle(line) for line in pdf.split(b"\n")):
        raise CertificateInvalid("the PDF holds lines of evidence bundles outside its attachments")
    try:  # whatever pypdf raises on a file it cannot read (AttributeError too, the third attack) is this
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        attachments = [(name, list(contents)) for name, contents in reader.attachments.items()]
        texts, printed = [], []
        for p in reader.pages:
            mono: list[str] = []

            def courier(text: str, _cm: Any, _tm: Any, font: Any, _size: Any, mono: list[str] = mono) -> None:
                if font is not None and str(font.get("/BaseFont", "")).lstrip("/") == "Courier":
                    mono.append(text)

            texts.append(p.extract_text(visitor_text=courier) or "")
            printed.append("\n".join(mono))
    except Exception as exc:  # the input's fault whatever its type: only pypdf runs in here
        raise CertificateInvalid(f"the PDF cannot be read: {type(exc).__name__}: {exc}") from exc
    if not texts or len(texts) > MAX_PAGES:
        raise CertificateInvalid(f"a certificate has 1 to {MAX_PAGES} pages, this PDF {len(texts)}")
    by_page: dict[int, tuple[str, bytes]] = {}
    rendering: list[bytes] = []
    for name, contents in attachments:
        if name == RENDERING:
            rendering += contents
            continue
        m = ATTACHMENT_RE.match(name)
        if m is None:
            raise CertificateInvalid(f"the PDF embeds a file {name[:80]!r} that is no evidence bundle")
        if len(contents) != 1 or int(m.group(1)) in by_page:
            raise CertificateInvalid(f"the PDF embeds {name!r} more than once")
        by_page[int(m.group(1))] = (name, contents[0])
    if sorted(by_page) != list(range(1, len(texts) + 1)):
        raise CertificateInvalid(
            f"the PDF has {len(texts)} pages and embeds bundles for pages {sorted(by_page) or 'none'}: a "
            "certificate embeds one bundle per page",
            details={"pages": len(texts), "attachments": sorted(n for n, _ in by_page.values())},
        )
    if len(rendering) != 1:
        raise CertificateInvalid(
            f"the PDF embeds {RENDERING} {len(rendering)} times, a certificate once (one issued before it "
            "was embedded must be issued again)"
        )
    return [
        CertificatePage(i, *by_page[i], texts[i - 1], printed[i - 1], rendering[0])
        for i in range(1, len(texts) + 1)
    ]


_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]{40,}")


def check_printed(bundle: EvidenceBundle, page: CertificatePage) -> None:
    """Raise CERTIFICATE_MISMATCH (step ``certificate``) unless the page's Courier text holds exactly the
    bundle's values (:func:`printed_values`), in order: an edited digest, root or anchor on the page fails
    here. It reads the page's text; what is drawn beside it is held by :func:`drawing_faults`."""
    printed = _HEX.findall(page.printed)
    expected = printed_values(bundle)
    if len(printed) != len(expected):
        raise CertificateMismatch(
            f"page {page.page} prints {len(printed)} digests and hashes, a certificate of this bundle "
            f"{len(expected)}",
            details={"page": page.page},
        )
    for (name, want), got in zip(expected, printed, strict=False):
        if got.lower() != want.lower():
            raise CertificateMismatch(
                f"page {page.page} prints {name} {got}, the embedded bundle's is {want}",
                details={"page": page.page, "field": name, "printed": got, "bundle": want},
            )


@dataclass(frozen=True, slots=True)
class Rendering:
    """``certificate.json``, read: the renderer's inputs that are not in the bundles."""

    lang: str
    issued_at: str
    issuer: str
    verify_base: str
    pages: tuple[tuple[str, tuple[StepResult, ...]], ...]  # per page: organisation name, steps at issue


def parse_rendering(raw: bytes, pages: int) -> Rendering:
    """CERTIFICATE_INVALID unless ``raw`` is a ``certificate.json`` of this format for ``pages`` pages."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CertificateInvalid(f"certificate.json is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != RENDERING_FORMAT:
        raise CertificateInvalid(f"certificate.json is not of format {RENDERING_FORMAT}")
    strings = {k: doc.get(k) for k in ("lang", "issued_at", "issuer", "verify_base")}
    if not all(isinstance(v, str) and len(v) <= _MAX_TEXT for v in strings.values()):
        raise CertificateInvalid(
            "certificate.json: lang, issued_at, issuer and verify_base are short strings"
        )
    if strings["lang"] not in LANGS:
        raise CertificateInvalid(f"certificate.json: language {strings['lang']!r} is not one of {LANGS}")
    entries = doc.get("pages")
    if not isinstance(entries, list) or len(entries) != pages or pages > MAX_PAGES:
        raise CertificateInvalid(f"certificate.json describes no {pages} pages")
    return Rendering(
        **{k: str(v) for k, v in strings.items()},
        pages=tuple(_page_entry(i, e) for i, e in enumerate(entries, 1)),
    )


def _page_entry(page: int, entry: Any) -> tuple[str, tuple[StepResult, ...]]:
    bad = CertificateInvalid(
        f"certificate.json, page {page}: an organisation name and the steps at issue "
        f"({', '.join(_STEPS)}; each once, in this order, {'/'.join(_ISSUE_STATUSES)})",
        details={"page": page},
    )
    if not isinstance(entry, Mapping) or set(entry) != {"org_name", "steps"}:
        raise bad
    name, steps = entry["org_name"], entry["steps"]
    if not isinstance(name, str) or len(name) > _MAX_TEXT or not isinstance(steps, list):
        raise bad
    out: list[StepResult] = []
    for s in steps:
        if not isinstance(s, Mapping) or set(s) != {"step", "status"}:
            raise bad
        if s["step"] not in _STEPS or s["status"] not in _ISSUE_STATUSES:
            raise bad
        out.append(StepResult(s["step"], s["status"]))
    order = [_STEPS.index(s.step) for s in out]
    if order != sorted(set(order)):
        raise bad
    return name, tuple(out)


def rendered_again(
    pages: Sequence[CertificatePage], rendering: Rendering, font: tuple[Path, int] | None = None
) -> tuple[bytes, list[tuple[str, list[tuple[str, str]]]]]:
    """The PDF the renderer makes from the embedded evidence, and each page's text as it prints it, with
    its ``(field, text)``."""
    segments: list[list[tuple[str, str]]] = []
    try:
        records = [
            CertifiedRecord(
                bundle_json=p.bundle.decode("utf-8"),
                steps=list(steps),
                verdict=verdict(list(steps)),
                org_name=name,
            )
            for p, (name, steps) in zip(pages, rendering.pages, strict=True)
        ]
        pdf = render_certificate(
            records,
            lang=rendering.lang,
            verify_base=rendering.verify_base,
            issued_at=rendering.issued_at,
            issuer=rendering.issuer,
            font=font,
            segments=segments,
        )
    except CertificateFontMissing:
        raise
    except (
        ProvenanceError,
        UnicodeDecodeError,
    ) as exc:  # another page's bundle is no bundle (its step failed)
        raise CertificateMismatch(
            f"the pages cannot be rendered again from the embedded evidence: {exc}", details={"field": "text"}
        ) from exc
    return pdf, [(p.text, segs) for p, segs in zip(read_certificate(pdf), segments, strict=True)]


def check_claims(
    page: CertificatePage,
    org: str,
    issued: tuple[str, tuple[StepResult, ...]],
    now: Sequence[Mapping[str, Any]],
    has_anchor: bool,
    trust: TrustStore | None,
) -> None:
    """CERTIFICATE_MISMATCH unless what the page says about the checks at issue and the organisation's name
    holds against the embedded bundle: a step printed "passed" is one the verifier finds passed now (a key
    now held against the bundle's own key, "warning", was pinned at issue), save the anchor, looked up on
    chain at issue (the bundle must hold one) and the listing (the gateway's, not re-read offline)."""
    name, steps = issued
    current = {str(s["step"]): str(s["status"]) for s in now if s["step"] in _STEPS[2:]}
    if [s.step for s in steps if s.step in _STEPS[2:]] != list(current):
        raise CertificateMismatch(
            f"page {page.page} prints the steps {[s.step for s in steps]}, the verifier runs {list(current)}",
            details={"page": page.page, "field": "steps"},
        )
    for s in steps:
        if s.status != "passed" or s.step not in current:
            continue
        found = current[s.step]
        ok = found in ("passed", "warning") or (s.step == "anchor" and has_anchor)
        if not ok:
            raise CertificateMismatch(
                f"page {page.page} prints step {s.step} passed at issue; the embedded bundle does not "
                f"support it (the verifier finds it {found})",
                details={"page": page.page, "field": f"step.{s.step}", "printed": "passed", "bundle": found},
            )
    pinned = trust.orgs.get(org) if trust is not None else None
    if name and pinned is not None and pinned.name != name:
        raise CertificateMismatch(
            f"page {page.page} names organisation {org} {name!r}; the trust file names it {pinned.name!r}",
            details={"page": page.page, "field": "org", "printed": name, "trust": pinned.name},
        )


def check_text(page: CertificatePage, expected: str, segments: Sequence[tuple[str, str]]) -> None:
    """CERTIFICATE_MISMATCH naming the first field drawn that the page does not print, unless the page's
    text is the rendered text (whitespace aside)."""
    got, want = _WS.sub("", page.text), _WS.sub("", expected)
    if got == want:
        return
    field = next((f for f, t in segments if _WS.sub("", t) not in got), "text")
    drawn = dict(segments).get(field, "")
    raise CertificateMismatch(
        f"page {page.page} does not print what its embedded evidence says"
        + (f": field {field} should read {drawn!r}" if drawn else " (text that is not the certificate's)"),
        details={"page": page.page, "field": field, "bundle": drawn},
    )


# What a viewer draws is not only a page's content stream: annotations (their appearance streams), forms,
# optional content, the page's boxes and rotation, and any later revision of the file. The renderer is
# deterministic given the embedded inputs, so the verifier holds all of it to the re-rendered PDF.
_CATALOG_FIELDS = {"/AcroForm": "form", "/OCProperties": "optional_content", "/AA": "action"}
_PAGE_FIELDS = {
    "/Annots": "annotation",
    "/Contents": "contents",
    "/Resources": "resources",
    "/AA": "action",
    **{k: "page_box" for k in ("/MediaBox", "/CropBox", "/BleedBox", "/TrimBox", "/ArtBox", "/Rotate")},
    "/UserUnit": "page_box",
}
_MAX_DEPTH = 32
# Compared on their own: the name trees (the embedded files are the bundles read_certificate reads), the
# associated files (PDF 2.0 / PDF/A-3, which a viewer lists as attachments too) and the pages, one by one
# with what they inherit.
_PER_PAGE = ("/Names", "/AF", "/Pages")
# The document information a viewer shows (the title as the window's): the renderer's, save the creation
# date (the time of rendering, not an input), which must still be a PDF date.
_INFO_DATE = re.compile(r"D:\d{14}(?:Z|[+-]\d{2}'\d{2}'?)?")


def _plain(obj: Any, depth: int = 0) -> Any:
    """A PDF object as plain, comparable values: references resolved, streams as their decoded bytes and
    dictionaries (without their encoding), a page tree's /Parent and /Kids left out (pages are compared
    one by one, with what they inherit)."""
    from pypdf.generic import IndirectObject, StreamObject

    if depth > _MAX_DEPTH:
        raise CertificateMismatch(
            "the PDF nests objects deeper than a certificate", details={"field": "page"}
        )
    if isinstance(obj, IndirectObject):
        return _plain(obj.get_object(), depth + 1)
    if isinstance(obj, StreamObject):
        skip = {"/Length", "/Filter", "/DecodeParms"}
        head = {str(k): _plain(v, depth + 1) for k, v in obj.items() if k not in skip}
        return ("stream", head, obj.get_data())
    if isinstance(obj, dict) and obj.get("/Type") == "/Page" and depth:
        return "page"  # a reference to a page (a destination): the pages are compared one by one
    if isinstance(obj, dict):
        # A page tree's /Kids only: a name tree's /Kids hold names (another embedded file) and are compared.
        drop = ("/Parent", "/P", "/Kids") if obj.get("/Type") == "/Pages" else ("/Parent", "/P")
        return {str(k): _plain(v, depth + 1) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list):
        return [_plain(v, depth + 1) for v in obj]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return float(obj)
    return obj if isinstance(obj, (str, bytes, bool)) or obj is None else str(obj)


_INHERITED = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")


def _page(page: Any) -> dict[str, Any]:
    """A page as drawn: its own entries and those it inherits from the page tree above it."""
    view = dict(page.items())
    node, depth = page.get("/Parent"), 0
    while node is not None and depth <= _MAX_DEPTH:
        node, depth = node.get_object(), depth + 1
        for key in _INHERITED:
            if key not in view and key in node:
                view[key] = node[key]
        node = node.get("/Parent")
    return {k: _plain(v) for k, v in view.items() if k != "/Parent"}


def _keys(obj: Any) -> set[str]:
    return set() if obj is None else {str(k) for k in obj.get_object()}


def _differs(got: Mapping[str, Any], want: Mapping[str, Any], names: Mapping[str, str], default: str) -> str:
    """The field of the first key whose value is not the re-render's, or ``""``."""
    for key in sorted(set(got) | set(want)):
        if got.get(key) != want.get(key):
            return names.get(key, default)
    return ""


def _attachments_differ(root: Any, mine: Any) -> str:
    """``embedded_files`` unless the embedded files' name tree is the re-render's (each file's name, /UF,
    description, type and bytes), ``associated_files`` unless the catalog's /AF is: the re-render's files,
    once each, in its order (an extra or repeated file only in /AF is listed by a PDF 2.0 viewer)."""

    def files(obj: Any) -> Any:
        return _plain(obj.get_object().get("/EmbeddedFiles")) if obj is not None else None

    if files(root.get("/Names")) != files(mine.get("/Names")):
        return "embedded_files"
    return "associated_files" if _plain(root.get("/AF")) != _plain(mine.get("/AF")) else ""


def _info_differs(trailer: Any, mine: Any) -> str:
    """``info`` unless the document information is the re-render's (its creation date a PDF date)."""
    got, want = (_plain(t.get("/Info")) or {} for t in (trailer, mine))
    date = got.pop("/CreationDate", None)
    want.pop("/CreationDate", None)
    if got != want or not (isinstance(date, str) and _INFO_DATE.fullmatch(date)):
        return "info"
    return ""


def drawing_faults(original: bytes, rerendered: bytes, count: int) -> list[CertificateMismatch | None]:
    """Per page, CERTIFICATE_MISMATCH unless everything the PDF draws is what the renderer draws from the
    embedded evidence: one revision (no incremental update), the document catalog (no form, no optional
    content, no actions, the embedded and associated files exactly the re-render's), the document
    information and each page with its page-tree ancestors (content streams, fonts, images, annotations,
    boxes, rotation), decoded, equal to the re-rendered PDF's."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        got, want = PdfReader(io.BytesIO(original), strict=False), PdfReader(io.BytesIO(rerendered))
        revisions = original.count(b"startxref")
        if "/Prev" in got.trailer or "/XRefStm" in got.trailer or revisions != 1:
            fault = CertificateMismatch(
                f"the PDF has been updated after it was rendered ({revisions} revisions): a certificate "
                "is one revision, as the renderer writes it",
                details={"field": "revision"},
            )
            return [fault] * count
        root, mine = got.root_object, want.root_object
        field = _differs(
            _plain({k: v for k, v in root.items() if k not in _PER_PAGE}),
            _plain({k: v for k, v in mine.items() if k not in _PER_PAGE}),
            _CATALOG_FIELDS,
            "catalog",
        )
        if not field and _keys(root.get("/Names")) != _keys(mine.get("/Names")):
            field = "catalog"  # a name tree beside the embedded files (JavaScript, say)
        if not field:
            field = _attachments_differ(root, mine) or _info_differs(got.trailer, want.trailer)
        if field:
            fault = CertificateMismatch(
                f"the PDF's document catalog or information is not the renderer's ({field}): a "
                "certificate draws, attaches and titles nothing beside what it renders from its evidence",
                details={"field": field},
            )
            return [fault] * count
        faults: list[CertificateMismatch | None] = []
        for i, (page, drawn) in enumerate(zip(got.pages, want.pages, strict=True), 1):
            a, b = _page(page), _page(drawn)
            field = _differs(a, b, _PAGE_FIELDS, "page")
            if field == "resources" and a["/Resources"].get("/Font") != b["/Resources"].get("/Font"):
                field = "font"  # another font program: a forged glyph, or a certificate of another font
            faults.append(
                CertificateMismatch(
                    f"page {i} draws what the renderer does not ({field}): a certificate's pages are "
                    "exactly as rendered from its embedded evidence"
                    + (
                        " with this machine's CJK font (the one it was issued with)"
                        if field == "font"
                        else ""
                    ),
                    details={"page": i, "field": field},
                )
                if field
                else None
            )
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        fault = CertificateMismatch(f"the PDF's drawing cannot be compared: {exc}", details={"field": "page"})
        return [fault] * count
    return faults
