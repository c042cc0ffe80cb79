"""A FHIR resource's narrative (``text.div``): held to R4's rules for it, and read as texts for the rule
that a dispense names no other organisation (``adapters.rx.mentions``).

R4 (Narrative, txt-1 and the XHTML rules): the div is well-formed XHTML, its root a ``div`` in the XHTML
namespace, holding only basic formatting (HTML 4's text, list, table, link and image elements), no
scripts, forms, frames, objects or event attributes, and no external references but links and images.
A narrative is shown to every reader of the record (a pharmacy reads the prescription's, the insurer the
dispense's, in their own FHIR viewers): active content in one would run there. ``FHIR_INVALID`` names the
field. Parsed by defusedxml (no DTD, no entity but XML's five and character references).
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from adapters.rx.errors import FhirInvalid, RxDispenseMismatch

_XHTML = "{http://www.w3.org/1999/xhtml}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# HTML 4 chapters 7-11 and 15 (txt-1), with links and images: the FHIR validator's list.
# fmt: off
ELEMENTS = frozenset((
    "p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong", "small",
    "big", "tt", "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr", "address", "bdo", "kbd",
    "sub", "sup", "ul", "ol", "li", "dl", "dt", "dd", "pre", "table", "caption", "colgroup", "col", "thead",
    "tr", "tfoot", "tbody", "th", "td", "code", "samp", "img", "map", "area", "ruby", "rt", "rp",
))
ATTRIBUTES = frozenset((
    "title", "style", "class", "id", "lang", "dir", "accesskey", "tabindex", "span", "width", "height",
    "align", "valign", "char", "charoff", "colspan", "rowspan", "abbr", "axis", "headers", "scope", "border",
    "cellpadding", "cellspacing", "summary", "frame", "rules", "href", "name", "src", "alt", "shape",
    "coords", "start", "type", "value", "cite", "datetime",
))
# fmt: on
_URL_ATTRIBUTES = ("href", "src", "cite")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})  # a link's; what a src or cite fetches:
_FETCH_SCHEMES = frozenset({"http", "https"})
_IMAGE_DATA = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,", re.IGNORECASE)
# Inline style may format; it may not fetch (url(), @import), run (expression(), behaviour bindings) or
# hide what it says behind escapes.
_STYLE_FORBIDDEN = re.compile(
    r"url\(|image-set|cross-fade|element\(|image\(|@import|expression\(|javascript:|behavior|binding|\\"
    r"|position\s*:\s*(?:fixed|absolute|sticky)|transform",  # a narrative may not cover its viewer's page
    re.IGNORECASE,
)
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)  # position:/**/fixed is position:fixed
# Before the root element: an XML declaration, a DOCTYPE (an external DTD a consumer's parser would fetch),
# a processing instruction (xml-stylesheet): a narrative is the div element alone.
_PROLOG = re.compile(r"<[?!](?!\[CDATA\[|--)", re.IGNORECASE)
MAX_DEPTH = 32  # a page's nesting; the walk below recurses
# Elements whose text a reader does not see in line, ruby annotations: the narrative is also read without
# them (and without images, whose alt a tiny image does not show).
_ANNOTATIONS = frozenset({"rt", "rp"})


def _invalid(message: str, field: str) -> FhirInvalid:
    return FhirInvalid(f"{field}: {message} (FHIR R4 narrative, txt-1)", details={"field": field})


def _url_fault(element: str, attr: str, value: str) -> str | None:
    url = "".join(value.split()).lower()  # browsers drop whitespace inside a scheme ("java\tscript:")
    if element == "img" and attr == "src" and _IMAGE_DATA.match(url):
        return None
    if url.startswith(("//", "\\", "/\\", "\\/")):
        return f"{attr} relative to the viewer's scheme"
    scheme = _SCHEME.match(url)
    allowed = _LINK_SCHEMES if attr == "href" else _FETCH_SCHEMES
    if scheme is not None and scheme.group(1) not in allowed:
        return f"{attr} with the scheme {scheme.group(1)!r}"
    return None


def _check(root: Element, field: str) -> None:
    if root.tag != f"{_XHTML}div":
        raise _invalid("the narrative's root is a div in the XHTML namespace", field)
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _invalid(f"elements nested more than {MAX_DEPTH} deep", field)
        name = el.tag[len(_XHTML) :] if el.tag.startswith(_XHTML) else None
        if name not in ELEMENTS:
            shown = el.tag if name is None else name
            raise _invalid(f"element {shown!r} is not allowed (no scripts, forms, frames or objects)", field)
        for attr, value in el.attrib.items():
            if attr == _XML_LANG:
                continue
            if attr not in ATTRIBUTES:
                raise _invalid(f"attribute {attr!r} is not allowed (no event handlers)", field)
            if attr in _URL_ATTRIBUTES and (fault := _url_fault(name, attr, value)) is not None:
                raise _invalid(f"{name} {fault} is not allowed", field)
            if attr == "style" and _STYLE_FORBIDDEN.search(_CSS_COMMENT.sub("", value)):
                raise _invalid("a style may not fetch, run or escape (url(), @import, expression())", field)
        stack += [(child, depth + 1) for child in el]


def parse(div: str, field: str) -> Element:
    """The narrative's root element, or ``FHIR_INVALID`` naming ``field``."""
    if _PROLOG.search(div):
        raise _invalid("no XML declaration, DOCTYPE or processing instruction: the div element alone", field)
    try:
        root: Element = fromstring(div)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise _invalid(f"not well-formed XHTML ({exc})", field) from exc
    _check(root, field)
    return root


def _text(el: Element, *, shown: bool) -> str:
    """The element's text in document order, an image as its ``alt`` (a broken image shows it in line);
    ``shown``: without ruby annotations and images (their tails stay: the text after)."""
    parts = [el.text or ""]
    for child in el:
        name = child.tag[len(_XHTML) :]
        if name == "img":
            parts.append("" if shown else child.get("alt", ""))  # a broken image shows it; a tiny one not
        elif not shown or name not in _ANNOTATIONS:
            parts.append(_text(child, shown=shown))
        parts.append(child.tail or "")
    return "".join(parts)


def readings(div: str, field: str) -> dict[str, str]:
    """A dispense's narrative as texts, by suffix of ``field``: ``""`` its text as a reader sees it (tags
    taken out without a space: 解放碑<b></b>大药房 reads as one name; CDATA, character references and images'
    ``alt`` as text), ``"#shown"`` the same without ruby annotations and images when that differs
    (解<rt>jie</rt>放… shows 解放… above its pinyin; a 1×1 image's alt is not seen), ``"@<attribute>.<n>"``
    each attribute's value (a ``title`` is a tooltip). ``FHIR_INVALID`` for a narrative R4 refuses;
    ``RX_DISPENSE_MISMATCH`` for a ``style`` or ``class`` (CSS hides, moves, reorders and draws text: the
    thirteenth to fifteenth attacks), ``bdo`` or ``dir``."""
    root = parse(div, field)
    for el in root.iter():
        if el.tag == f"{_XHTML}bdo" or "dir" in el.attrib or "style" in el.attrib or "class" in el.attrib:
            raise RxDispenseMismatch(
                "a dispense's narrative is plain formatting: no styles or classes (which hide, move or draw "
                "text), no bdo or dir (which reorder it): the rule on names reads it as written",
                details={"field": field},
            )
    out = {"": _text(root, shown=False)}
    if (shown := _text(root, shown=True)) != out[""]:
        out["#shown"] = shown
    n = 0
    for el in root.iter():
        for attr, value in el.attrib.items():
            out[f"@{attr.rpartition('}')[2]}.{n}"] = value
            n += 1
    return out


def check(obj: dict[str, Any]) -> None:
    """The narratives of a resource and of its contained resources, held to R4 (``FHIR_INVALID``)."""
    contained = obj.get("contained")
    resources: list[tuple[str, Any]] = [("", obj)]
    if isinstance(contained, list):
        resources += [(f"contained.{i}.", res) for i, res in enumerate(contained) if isinstance(res, dict)]
    for prefix, res in resources:
        text = res.get("text")
        if isinstance(text, dict) and isinstance(text.get("div"), str):
            parse(text["div"], f"{prefix}text.div")
