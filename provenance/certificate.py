"""存证证明: a printable PDF certificate of logged records, each page one record with its evidence bundle
embedded as a file attachment, so that the certificate verifies offline (`provenance verify FILE.pdf`).

A page prints who recorded what and when, the SM3 digest, the SM2 signature and the signer key's
fingerprint, the log position and checkpoint (with its witness cosignatures), the on-chain anchor, the
verification result at issue time and a QR code opening the `/verify` page on the record. The values a
reader compares by eye (digests, fingerprint, root, anchor hashes) are printed in Courier, a PDF core font
whose text stays the characters printed, and :func:`check_printed` reads them back against the embedded
bundle: an edited digest on the page fails step ``certificate`` (docs/formats.md, Certificates). Beside the
bundles the PDF embeds the renderer's other inputs (``certificate.json``), so that the verifier renders the
pages again and holds every word printed to the evidence (:mod:`provenance.certificate_check`).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from provenance.crypto import SM2PublicKey
from provenance.errors import (
    CertificateFontMissing,
    CertificateInvalid,
    CertificateRefused,
    ProvenanceError,
)
from provenance.log.bundle import EvidenceBundle
from provenance.log.checkpoint import parse_note
from provenance.verification.batch import check_bundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verifier, verdict

# Debian's CJK fonts, in order of preference (file, face index in the collection: Noto's SC face is 2).
# Installed by the repository's setup (.ci/run): fonts-wqy-zenhei.
FONT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)
LANGS = ("zh", "en")
ATTACHMENT = "evidence-{page:03d}.json"  # the bundle of page N (1-based), as the gateway served it
ATTACHMENT_RE = re.compile(r"^evidence-([0-9]{3})\.json$")
# What the pages print beside their bundles (language, issue time, issuer, QR base, names, steps at issue):
# with the bundles, everything the verifier needs to render the pages again (provenance.certificate_check).
RENDERING = "certificate.json"
RENDERING_FORMAT = "shancheng-certificate/1"
MAX_PAGES = 500  # one page a record: a subject's certificate beyond this is refused, not truncated

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "区块链存证证明",
        "subtitle": "山城溯源 · 国密（SM2/SM3）存证",
        "issued": "出具时间",
        "issuer": "出具方",
        "record": "存证记录",
        "org": "记录机构",
        "kind": "记录类型",
        "subject": "记录主体",
        "time": "签署时间",
        "digests": "数字指纹",
        "digest": "记录编号（SM3）",
        "payload_digest": "内容摘要（SM3）",
        "signature": "机构签名（SM2）",
        "sig": "签名值（DER，Base64）",
        "fingerprint": "签名公钥指纹（SM3）",
        "log": "日志位置",
        "position": "叶子序号 / 树大小",
        "origin": "日志标识",
        "root": "检查点根哈希",
        "log_sig": "检查点签名",
        "witnesses": "见证人联署",
        "none": "无",
        "anchor": "链上锚定",
        "chain": "链 ID",
        "contract": "合约地址",
        "block": "区块高度",
        "block_hash": "区块哈希",
        "tx": "交易哈希",
        "unanchored": "尚未锚定",
        "result": "出具时核验结果",
        "verdict": "结论",
        "qr": "扫码核验",
        "footer": "本证明内嵌证据包（{name}），可离线核验：provenance verify 本文件。"
        "核验见 docs/formats.md。第 {page} / {pages} 页",
        "verified": "已核验（公钥已锁定）",
        "consistent": "内部一致（公钥未锁定，未核验身份）",
        "failed": "核验失败",
        "passed": "通过",
        "skipped": "未检查",
        "warning": "未锁定",
        "step.listing": "与网关列表一致",
        "step.digest": "记录摘要",
        "step.payload": "内容摘要",
        "step.signer": "签名机构与公钥",
        "step.signature": "SM2 签名",
        "step.checkpoint": "检查点签名",
        "step.inclusion": "默克尔包含证明",
        "step.anchor": "链上锚定",
    },
    "en": {
        "title": "Certificate of Evidence Preservation",
        "subtitle": "Shancheng Provenance · SM2/SM3 evidence log",
        "issued": "Issued at",
        "issuer": "Issued by",
        "record": "Record",
        "org": "Organisation",
        "kind": "Kind",
        "subject": "Subject",
        "time": "Signed at",
        "digests": "Digests",
        "digest": "Record id (SM3)",
        "payload_digest": "Payload digest (SM3)",
        "signature": "Signature (SM2)",
        "sig": "Signature (DER, base64)",
        "fingerprint": "Signer key fingerprint (SM3)",
        "log": "Log position",
        "position": "Leaf index / tree size",
        "origin": "Log origin",
        "root": "Checkpoint root",
        "log_sig": "Checkpoint signed by",
        "witnesses": "Witness cosignatures",
        "none": "none",
        "anchor": "On-chain anchor",
        "chain": "Chain id",
        "contract": "Contract",
        "block": "Block",
        "block_hash": "Block hash",
        "tx": "Transaction",
        "unanchored": "not anchored yet",
        "result": "Verification at issue time",
        "verdict": "Verdict",
        "qr": "Scan to verify",
        "footer": "The evidence bundle is embedded in this PDF ({name}): verify it offline with "
        "`provenance verify` on this file (docs/formats.md). Page {page} of {pages}",
        "verified": "verified (pinned keys)",
        "consistent": "internally consistent, NOT verified (keys not pinned)",
        "failed": "FAILED",
        "passed": "passed",
        "skipped": "not checked",
        "warning": "unpinned",
        "step.listing": "as the gateway listed it",
        "step.digest": "record digest",
        "step.payload": "payload digest",
        "step.signer": "signer and key",
        "step.signature": "SM2 signature",
        "step.checkpoint": "checkpoint signature",
        "step.inclusion": "Merkle inclusion proof",
        "step.anchor": "on-chain anchor",
    },
}


@dataclass(frozen=True, slots=True)
class CertifiedRecord:
    """One page: the bundle as served (embedded verbatim), the organisation's name and the checks at issue."""

    bundle_json: str
    steps: Sequence[StepResult]
    verdict: str
    org_name: str = ""
    bundle: EvidenceBundle = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bundle", EvidenceBundle.from_json(self.bundle_json))


def certify(
    verifier: Verifier,
    doc: Any,
    trust: TrustStore | None,
    *,
    listed: tuple[Mapping[str, Any], str] | None = None,
    duplicate: bool = False,
) -> CertifiedRecord:
    """A bundle document verified now and made a page; CERTIFICATE_REFUSED naming the step that failed
    (a certificate is issued only for a record that verifies at issue time)."""
    report: list[StepResult] = []
    failure = check_bundle(verifier, doc, report=report, listed=listed, duplicate=duplicate)
    if failure is not None:
        raise CertificateRefused(
            f"record {failure.record or '?'} does not verify: step '{failure.step}' failed "
            f"[{failure.code}]: {failure.message}; no certificate is issued",
            step=failure.step,
            details={"record": failure.record, "failed_code": failure.code},
        )
    org = doc["record"]["org"]
    entry = trust.orgs.get(org) if trust is not None else None
    return CertifiedRecord(
        bundle_json=bundle_text(doc),
        steps=report,
        verdict=verdict(report),
        org_name=entry.name if entry else "",
    )


def printed_values(bundle: EvidenceBundle) -> list[tuple[str, str]]:
    """The values a page prints in Courier, in page order, as ``(field, text)``: what :func:`check_printed`
    reads back (one function for both sides, so the printed and the checked values cannot drift)."""
    env = bundle.signed.envelope
    checkpoint, _ = parse_note(bundle.checkpoint)
    values = [
        ("digest", bundle.digest),
        ("payload_digest", env.payload_digest),
        ("fingerprint", SM2PublicKey.from_pem(bundle.signer_public_key.encode("ascii")).fingerprint()),
        ("root", checkpoint.root.hex()),
    ]
    if bundle.anchor is not None:
        a = bundle.anchor
        values += [("contract", a.contract), ("block_hash", a.block_hash), ("tx", a.tx_hash)]
    return values


def verify_link(base: str) -> Callable[[str], str]:
    """The QR code's target: the `/verify` page opening straight on the record (``?q=<record id>``)."""
    base = base if base.endswith("/") else base + "/"
    return lambda record_id: f"{base}?q={quote(record_id, safe='')}"


def find_font() -> tuple[Path, int] | None:
    """The first CJK font of :data:`FONT_CANDIDATES` present on this machine."""
    for path, index in FONT_CANDIDATES:
        if Path(path).is_file():
            return Path(path), index
    return None


def render_certificate(
    records: Sequence[CertifiedRecord],
    *,
    lang: str = "zh",
    verify_base: str,
    issued_at: str,
    issuer: str,
    font: tuple[Path, int] | None = None,
    segments: list[list[tuple[str, str]]] | None = None,
) -> bytes:
    """The PDF: one page per record, each with its bundle attached (``evidence-NNN.json``), and what the
    pages print beside the bundles (``certificate.json``, :func:`rendering_document`). ``segments``, when
    given, receives each page's ``(field, text)`` in drawing order: what a verifier names on a mismatch."""
    from fpdf import FPDF

    # fontTools reports every table it leaves out of a subset (the font's bitmaps) on the root logger.
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
    if lang not in LANGS:
        raise CertificateInvalid(f"language {lang!r} is not one of {', '.join(LANGS)}")
    if not records or len(records) > MAX_PAGES:
        raise CertificateInvalid(f"a certificate holds 1 to {MAX_PAGES} records, not {len(records)}")
    font = font or find_font()
    if font is None:
        raise CertificateFontMissing(
            "no CJK font found (" + ", ".join(p for p, _ in FONT_CANDIDATES) + "): install Debian's "
            "fonts-wqy-zenhei or name a font file with --font"
        )
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_title(_TEXT[lang]["title"])
    pdf.set_creator("shancheng-provenance")
    try:
        pdf.add_font("cjk", fname=str(font[0]), collection_font_number=font[1])
    except Exception as exc:  # fontTools' errors for a file that is no font are of many kinds
        raise CertificateFontMissing(f"font {font[0]} cannot be used: {exc}") from exc
    verify_url = verify_link(verify_base)
    for page, rec in enumerate(records, 1):
        drawn = _Page(pdf, rec, _TEXT[lang], page=page, pages=len(records))
        drawn.draw(verify_url(rec.bundle.digest), issued_at, issuer)
        if segments is not None:
            segments.append(drawn.segments)
        pdf.embed_file(
            bytes=rec.bundle_json.encode("utf-8"),
            basename=ATTACHMENT.format(page=page),
            mime_type="application/json",
            desc=f"evidence bundle of record {rec.bundle.digest}",
            compress=True,
        )
    rendering = rendering_document(
        records, lang=lang, verify_base=verify_base, issued_at=issued_at, issuer=issuer
    )
    pdf.embed_file(
        bytes=json.dumps(rendering, ensure_ascii=False, indent=2).encode("utf-8"),
        basename=RENDERING,
        mime_type="application/json",
        desc="what the pages print beside their evidence bundles",
        compress=True,
    )
    return bytes(pdf.output())


def rendering_document(
    records: Sequence[CertifiedRecord], *, lang: str, verify_base: str, issued_at: str, issuer: str
) -> dict[str, Any]:
    """``certificate.json``: the renderer's inputs that are not in the bundles. The verdict is not among
    them: it is the steps' (:func:`verdict`), so a page cannot print one its steps do not give."""
    return {
        "format": RENDERING_FORMAT,
        "lang": lang,
        "issued_at": issued_at,
        "issuer": issuer,
        "verify_base": verify_base,
        "pages": [
            {"org_name": r.org_name, "steps": [{"step": s.step, "status": s.status} for s in r.steps]}
            for r in records
        ],
    }


class _Page:
    """One record's page; layout in millimetres on A4 (margins 15)."""

    LEFT, LABEL_W, WIDTH = 15.0, 48.0, 180.0

    def __init__(self, pdf: Any, rec: CertifiedRecord, text: dict[str, str], *, page: int, pages: int):
        self.pdf, self.rec, self.t, self.page, self.pages = pdf, rec, text, page, pages
        self.segments: list[tuple[str, str]] = []  # (field, text) as drawn: what a mismatch is named by

    def draw(self, url: str, issued_at: str, issuer: str) -> None:
        pdf, t, b = self.pdf, self.t, self.rec.bundle
        env = b.signed.envelope
        pdf.add_page()
        pdf.set_draw_color(150, 20, 20)
        pdf.set_line_width(0.6)
        pdf.rect(8, 8, 194, 281)
        self._qr(url)
        pdf.set_xy(self.LEFT, 16)
        pdf.set_font("cjk", size=20)
        self._text("title", 140, 10, t["title"])
        pdf.set_font("cjk", size=10)
        self._text("subtitle", 140, 6, t["subtitle"])
        self._text("issued_at", 140, 6, f"{t['issued']}: {issued_at}")
        self._text("issuer", 140, 6, f"{t['issuer']}: {issuer}")
        pdf.set_y(58)
        org = f"{self.rec.org_name} ({env.org})" if self.rec.org_name else env.org
        self._section(t["record"])
        self._row(t["org"], org, field="org")
        self._row(t["kind"], env.kind, field="kind")
        self._row(t["subject"], env.subject, field="subject")
        self._row(t["time"], env.timestamp, field="time")
        self._section(t["digests"])
        printed = dict(printed_values(b))
        self._row(t["digest"], printed["digest"], mono=True, field="digest")
        self._row(t["payload_digest"], printed["payload_digest"], mono=True, field="payload_digest")
        self._section(t["signature"])
        self._row(t["fingerprint"], printed["fingerprint"], mono=True, field="fingerprint")
        self._row(t["sig"], b.signed.signature_b64(), mono=True, size=7, field="signature")
        self._section(t["log"])
        checkpoint, signatures = parse_note(b.checkpoint)
        log_name = b.log_key[0] if b.log_key else (signatures[0].key_name if signatures else "")
        self._row(t["origin"], checkpoint.origin, field="origin")
        self._row(t["position"], f"{b.leaf_index} / {b.tree_size}", field="position")
        self._row(t["root"], printed["root"], mono=True, field="root")
        self._row(t["log_sig"], log_name, field="log_key")
        cosigners = sorted({s.key_name for s in signatures if s.key_name != log_name})
        self._row(t["witnesses"], ", ".join(cosigners) if cosigners else t["none"], field="witnesses")
        self._section(t["anchor"])
        if b.anchor is None:
            self._row(t["anchor"], t["unanchored"], field="anchor")
        else:
            self._row(t["chain"], str(b.anchor.chain_id), field="chain_id")
            self._row(t["contract"], printed["contract"], mono=True, field="contract")
            self._row(t["block"], str(b.anchor.block_number), field="block")
            self._row(t["block_hash"], printed["block_hash"], mono=True, field="block_hash")
            self._row(t["tx"], printed["tx"], mono=True, field="tx")
        self._section(t["result"])
        self._row(t["verdict"], t.get(self.rec.verdict, self.rec.verdict), bold=True, field="verdict")
        for s in self.rec.steps:
            label = "  " + t.get(f"step.{s.step}", s.step)
            self._row(label, t.get(s.status, s.status), size=8, field=f"step.{s.step}")
        name = ATTACHMENT.format(page=self.page)
        pdf.set_xy(self.LEFT, 270)
        pdf.set_font("cjk", size=7.5)
        footer = t["footer"].format(name=name, page=self.page, pages=self.pages)
        self.segments.append(("footer", footer))
        pdf.multi_cell(self.WIDTH, 4, footer, align="L")

    def _text(self, name: str, w: float, h: float, text: str) -> None:
        self.segments.append((name, text))
        self.pdf.set_x(self.LEFT)
        self.pdf.cell(w, h, text, new_x="LMARGIN", new_y="NEXT")

    def _qr(self, url: str) -> None:
        import segno

        png = io.BytesIO()
        segno.make(url, error="m", micro=False).save(png, kind="png", scale=8, border=4)
        png.seek(0)
        self.pdf.image(png, x=160, y=14, w=36, h=36)
        self.pdf.set_xy(160, 50)
        self.pdf.set_font("cjk", size=8)
        self.pdf.cell(36, 4, self.t["qr"], align="C")
        self.segments.append(("qr", self.t["qr"]))

    def _section(self, title: str) -> None:
        pdf = self.pdf
        pdf.ln(2)
        pdf.set_x(self.LEFT)
        self.segments.append(("section", title))
        pdf.set_font("cjk", size=11)
        pdf.set_text_color(150, 20, 20)
        pdf.cell(self.WIDTH, 6.5, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.set_draw_color(200, 200, 200)
        pdf.set_line_width(0.2)
        pdf.line(self.LEFT, pdf.get_y(), self.LEFT + self.WIDTH, pdf.get_y())

    def _row(
        self,
        label: str,
        value: str,
        *,
        field: str,
        mono: bool = False,
        size: float = 9,
        bold: bool = False,
    ) -> None:
        pdf = self.pdf
        self.segments.append((field, f"{label.strip()} {value}"))  # whitespace: not compared
        pdf.set_x(self.LEFT)
        pdf.set_font("cjk", size=size)
        pdf.cell(self.LABEL_W, 5, label)
        if mono:
            pdf.set_font("Courier", size=size)
        elif bold:
            pdf.set_font("cjk", size=size + 1)
        pdf.multi_cell(self.WIDTH - self.LABEL_W, 5, value, new_x="LMARGIN", new_y="NEXT")


def bundle_text(doc: Any) -> str:
    """A bundle document as the certificate embeds it (JSON, UTF-8, indented for a reader)."""
    try:
        return json.dumps(doc, ensure_ascii=False, indent=2)
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(f"the bundle cannot be written as JSON: {exc}") from exc
