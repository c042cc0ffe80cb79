"""The thirteenth outside attack's findings on the dispense and prescription texts (kit13, on main at
1f8d611), replayed with the attacker's inputs through the real HTTP API (single records and
/api/v1/records:bulk), signed with real SM2 keys: another organisation named in a note through characters
drawn as nothing, right-to-left reordering, look-alikes and other scripts' digits, and narrative markup the
rule did not read (finding 1); honest English notes refused (finding 2); active content in a narrative
(finding 3); and the fourteenth's (kit14, on the thirteenth's fixes): a partial right-to-left override, a
narrative's DOCTYPE, ids inside longer words; the sixteenth's (kit16): markup live in a viewer behind an
XML comment, decoys shrunk, moved or hidden by plain HTML, markdown notes; the seventeenth's (kit17): a
character reference browsers draw as a letter, a page-covering style property, a javascript: markdown link."""

from __future__ import annotations

from adapters._common import canonical_json
from provenance.crypto.sm3 import sm3_hex
from tests.adapters.rx.test_dispense_texts import (
    ACTIVE,
    BYPASSES,
    HONEST,
    NOT_PLAIN,
    PARTIAL_BIDI,
    PROLOGUE,
    WORDS,
    X,
)
from tests.kit.gateway import Harness, refused, rx_issue
from tests.security.test_attack7_rx import _dispense, _issued, _send
from tests.security.test_attack10_rx import _bulk, _recorded


def test_f13_1_names_in_other_forms_are_refused(harness: Harness) -> None:
    h = harness
    rx = _issued(h)
    pharmacy = h.client("pharmacy-2")
    for name, changes, field in BYPASSES:
        r = _send(pharmacy, _dispense(rx, **changes), rx)
        assert refused(r, 400, "RX_DISPENSE_MISMATCH")["field"] == field, name  # and its character
    picked = [BYPASSES[0], BYPASSES[6], BYPASSES[-1]]
    bulk = [_dispense(_issued(h), **changes) for _name, changes, _field in picked]
    assert _bulk(h, pharmacy, bulk) == [("rejected", "RX_DISPENSE_MISMATCH", f) for _n, _c, f in picked]


def test_f13_2_honest_notes_are_recorded(harness: Harness) -> None:
    h = harness
    for text in HONEST[:3]:
        rx = _issued(h)
        _recorded(h, _dispense(rx, note=[{"text": text}]), rx)


def test_f13_3_narratives_carry_no_active_content(harness: Harness) -> None:
    h = harness
    rx = _issued(h)
    for div in ACTIVE[:3]:
        narrative = {"status": "generated", "div": f'<div xmlns="{X}">{div}</div>'}
        r = _send(h.client("pharmacy-2"), _dispense(rx, text=narrative), rx)
        assert refused(r, 400, "FHIR_INVALID") == {"field": "text.div"}, div
        other = "RXK13" + rx[-6:]
        issue = {**rx_issue(other), "text": narrative}
        digest = sm3_hex(canonical_json(issue))  # the client's own adapter would refuse to digest it
        r = h.client("hospital-2").submit("rx.issue", issue, subject=f"rx:{other}", payload_digest=digest)
        assert refused(r, 400, "FHIR_INVALID") == {"field": "text.div"}, div


def test_f14_partial_reordering_prologue_and_words(harness: Harness) -> None:
    h = harness
    rx = _issued(h)
    pharmacy = h.client("pharmacy-2")
    r = _send(pharmacy, _dispense(rx, note=[{"text": PARTIAL_BIDI[0]}]), rx)
    assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": "note.0.text", "character": "U+202E"}
    narrative = {"status": "generated", "div": f'{PROLOGUE[0]}<div xmlns="{X}">x</div>'}
    r = _send(pharmacy, _dispense(rx, text=narrative), rx)
    assert refused(r, 400, "FHIR_INVALID") == {"field": "text.div"}
    _recorded(h, _dispense(rx, note=[{"text": WORDS[0]}]), rx)


def test_f16_viewer_markup_decoys_and_markdown(harness: Harness) -> None:
    h = harness
    rx = _issued(h)
    pharmacy = h.client("pharmacy-2")
    # F16-11: an onerror handler behind "<!-->", one comment to XML, live to HTML: refused in a prescription.
    other = "RXK16" + rx[-6:]
    xss = {
        "status": "generated",
        "div": f'<div xmlns="{X}"><p><!--><img src="x" onerror="alert(1)"/>--></p></div>',
    }
    issue = {**rx_issue(other), "text": xss}
    digest = sm3_hex(canonical_json(issue))
    r = h.client("hospital-2").submit("rx.issue", issue, subject=f"rx:{other}", payload_digest=digest)
    assert refused(r, 400, "FHIR_INVALID") == {"field": "text.div"}
    # F16-1/4/7 in one bulk request, each on its own prescription: all three refused, naming what.
    picked = [NOT_PLAIN[0], NOT_PLAIN[5], NOT_PLAIN[8]]
    bulk = [
        _dispense(_issued(h), text={"status": "generated", "div": f'<div xmlns="{X}">{div}</div>'})
        for div, _what, _name in picked
    ]
    assert _bulk(h, pharmacy, bulk) == [("rejected", "RX_DISPENSE_MISMATCH", "text.div")] * 3
    # F16-3: a note's raw HTML, and the name split by an empty link.
    r = _send(pharmacy, _dispense(rx, note=[{"text": "<script>alert(1)</script>"}]), rx)
    assert refused(r, 400, "FHIR_INVALID") == {"field": "note.0.text"}
    r = _send(pharmacy, _dispense(rx, note=[{"text": "解放碑[](x)大药房 发药"}]), rx)
    assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": "note.0.text"}
    # A plain narrative with a numbered list and a markdown note is recorded.
    plain = {
        "status": "generated",
        "div": f'<div xmlns="{X}"><p>观音桥药店 发药</p><ol><li>每日一次</li></ol></div>',
    }
    _recorded(h, _dispense(rx, text=plain, note=[{"text": "**饭后服用**"}]), rx)


def test_f17_references_styles_and_markdown_links(harness: Harness) -> None:
    h = harness
    rx = _issued(h)
    pharmacy = h.client("pharmacy-2")
    # K17-1: &#x9F; is a control to XML and Ÿ to a browser: PHARMACŸ-1.
    c1 = {"status": "generated", "div": f'<div xmlns="{X}"><p>PHARMAC&#x9F;-1</p></div>'}
    r = _send(pharmacy, _dispense(rx, text=c1), rx)
    assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": "text.div", "character": "U+009F"}
    # K17-2 and K17-8 in a prescription: a page-covering property, a javascript: link in a note.
    for n, changes, field in [
        (
            1,
            {"text": {"status": "generated", "div": f'<div xmlns="{X}"><p style="scale:100">x</p></div>'}},
            "text.div",
        ),
        (2, {"note": [{"text": "[详情](&#106;avascript:alert(1))"}]}, "note.0.text"),
    ]:
        other = f"RXK17{n}" + rx[-6:]
        issue = {**rx_issue(other), **changes}
        digest = sm3_hex(canonical_json(issue))
        r = h.client("hospital-2").submit("rx.issue", issue, subject=f"rx:{other}", payload_digest=digest)
        assert refused(r, 400, "FHIR_INVALID") == {"field": field}, changes
