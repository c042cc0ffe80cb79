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
    r"|src\("  # CSS Values 4's url() of a string
    # A narrative may not cover or scale its viewer's page: fixed positions, transforms, zoom, and negative
    # margins (a link pulled 2000 px out with as much padding).
    r"|position\s*:\s*(?:fixed|absolute|sticky)|transform|zoom|margin[\w-]*\s*:[^;]*-\s*[\d.]",
    re.IGNORECASE,
)
# Markup declarations anywhere: before the root an XML declaration, a DOCTYPE (an external DTD a consumer's
# parser would fetch), a processing instruction (xml-stylesheet); inside it comments and CDATA sections,
# which XML and the HTML parsers FHIR viewers insert a narrative with end differently ("<!-->" opens a
# comment to XML and is a whole one to HTML; "<![CDATA[>" is a comment to HTML up to its first ">"):
# markup hidden from this check was live in a viewer (the sixteenth attack). A narrative is elements,
# attributes and text alone.
_DECLARATION = re.compile(r"<[?!]")
MAX_DEPTH = 32  # a page's nesting; the walk below recurses
# HTML's void elements: a viewer's HTML parser closes them at once and draws what XHTML puts inside as text
# after them (an image's content is no part of the image).
_VOID = frozenset({"br", "hr", "img", "col", "area"})

# A dispense's narrative is plain formatting, so that what the rule on names reads is what a viewer draws:
# no styles or classes (they hide, move and draw text), bdo or dir (they reorder it), images (an alt shown
# or not), ruby (text drawn above text), tfoot (drawn below the rows after it), table layout (a cell spanning
# rows or aligned to the bottom is drawn elsewhere than it stands), and no size-changing element inside
# another (thirty nested <small> shrink a decoy letter out of sight). The thirteenth to sixteenth attacks.
_NOT_PLAIN = frozenset({"bdo", "img", "map", "area", "ruby", "rt", "rp", "tfoot"})
_PLAIN_ATTRIBUTES = frozenset((
    "title", "lang", "id", "name", "href", "abbr", "axis", "headers", "scope", "summary", "cite", "datetime",
    "border", "cellpadding", "cellspacing", "accesskey", "tabindex",
))  # fmt: skip
_SIZED = frozenset({"small", "big", "sub", "sup"})
# What a table's parts hold: anything else (a decoy between two cells) an HTML parser moves out in front of
# the table, joining the cells around it (the sixteenth attack).
_TABLE_PARTS = {
    "table": frozenset({"caption", "colgroup", "thead", "tbody", "tr"}),
    "thead": frozenset({"tr"}),
    "tbody": frozenset({"tr"}),
    "tr": frozenset({"td", "th"}),
    "colgroup": frozenset({"col"}),
}
# An element written self-closed: XML's empty element, but HTML ignores the "/" of all but void elements
# and leaves <small/> open over what follows (forty of them shrink a decoy out of sight).
_SELF_CLOSED = re.compile(r"""<([A-Za-z][\w.:-]*)(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/>""")


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
            if attr == "style" and "/*" in value:
                # Comments are not stripped to match what is left: a "/*" inside a CSS string opens none,
                # and what a stripper removed up to a later "*/" was live (the sixteenth attack).
                raise _invalid("a style may not hold comments", field)
            if attr == "style" and _STYLE_FORBIDDEN.search(value):
                raise _invalid("a style may not fetch, run or escape (url(), @import, expression())", field)
        if name in _VOID and ((el.text or "").strip() or len(el)):
            raise _invalid(f"a {name} element holds nothing (a viewer draws its content as text)", field)
        stack += [(child, depth + 1) for child in el]


def parse(div: str, field: str) -> Element:
    """The narrative's root element, or ``FHIR_INVALID`` naming ``field``."""
    if _DECLARATION.search(div):
        raise _invalid(
            "no XML declaration, DOCTYPE, processing instruction, comment or CDATA section: elements, "
            "attributes and text alone",
            field,
        )
    try:
        root: Element = fromstring(div)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise _invalid(f"not well-formed XHTML ({exc})", field) from exc
    _check(root, field)
    return root


def _not_plain(el: Element, sized: bool) -> tuple[str, str] | None:
    """What in ``el`` (inside a size-changing element: ``sized``) a dispense's plain narrative refuses, as
    ``("element", name)``, ``("attribute", name)`` or ``("text_in", name)`` (text in a table part)."""
    name = el.tag[len(_XHTML) :]
    if name in _NOT_PLAIN or (sized and name in _SIZED):
        return "element", name
    for attr in el.attrib:
        if attr != _XML_LANG and attr not in _PLAIN_ATTRIBUTES:
            return "attribute", attr
    if (parts := _TABLE_PARTS.get(name)) is not None:
        if any((text or "").strip() for text in (el.text, *(child.tail for child in el))):
            return "text_in", name
        for child in el:
            if (child_name := child.tag[len(_XHTML) :]) not in parts:
                return "element", child_name
    inside = sized or name in _SIZED
    return next((found for child in el if (found := _not_plain(child, inside)) is not None), None)


def _text(el: Element) -> str:
    """The element's text in document order, each item of an ordered list after the number a viewer draws
    before it ("1."; a plain narrative's lists have no ``start``, ``type`` or ``value``)."""
    parts = [el.text or ""]
    number = 0 if el.tag == f"{_XHTML}ol" else None
    for child in el:
        if number is not None and child.tag == f"{_XHTML}li":
            number += 1
            parts.append(f"{number}.")
        parts += [_text(child), child.tail or ""]
    return "".join(parts)


def readings(div: str, field: str) -> dict[str, str]:
    """A dispense's narrative as texts, by suffix of ``field``: ``""`` its text (tags taken out without a
    space: 解放碑<b></b>大药房 reads as one name; character references as text),
    ``"@<attribute>.<n>"`` each attribute's value (a ``title`` is a tooltip). ``FHIR_INVALID`` for a
    narrative R4 refuses; ``RX_DISPENSE_MISMATCH`` naming the ``element`` or ``attribute`` for one a plain
    narrative does not hold (``_NOT_PLAIN``, ``_PLAIN_ATTRIBUTES``: what it holds is drawn as written)."""
    root = parse(div, field)
    found = _not_plain(root, False)
    if found is None and (closed := _SELF_CLOSED.search(div)) is not None and closed[1] not in _VOID:
        found = "self_closed", closed[1]
    if found is not None:
        what, name = found
        said = {"text_in": "text straight in", "self_closed": "self-closed"}.get(what, what)
        raise RxDispenseMismatch(
            f"a dispense's narrative is plain formatting: no {said} {name!r} (styles, classes, images, "
            "ruby, bdo, dir, table layout, text between a table's cells, nested small, big, sub or sup and "
            "non-void elements written self-closed hide, move or reorder text in a viewer); the rule on "
            "names reads it as written",
            details={"field": field, what: name},
        )
    out = {"": _text(root)}
    n = 0
    for el in root.iter():
        for attr, value in el.attrib.items():
            out[f"@{attr.rpartition('}')[2]}.{n}"] = value
            n += 1
    return out


def resources(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A resource and its contained resources, each with the prefix of its fields' paths."""
    contained = obj.get("contained")
    out: list[tuple[str, dict[str, Any]]] = [("", obj)]
    if isinstance(contained, list):
        out += [(f"contained.{i}.", res) for i, res in enumerate(contained) if isinstance(res, dict)]
    return out


def check(obj: dict[str, Any]) -> None:
    """The narratives of a resource and of its contained resources, held to R4 (``FHIR_INVALID``)."""
    for prefix, res in resources(obj):
        text = res.get("text")
        if isinstance(text, dict) and isinstance(text.get("div"), str):
            parse(text["div"], f"{prefix}text.div")
