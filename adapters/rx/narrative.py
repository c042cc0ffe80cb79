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

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit
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
# Inline style formats text and boxes by an allow-list of properties (the fifteenth to seventeenth attacks
# went round each list of forbidden ones: transform, then scale/translate/rotate, relative offsets, shadows
# and outlines covering the viewer's page): no property that positions, transforms, shadows or reorders; no
# function but a colour's (no url(), src(), image-set(), expression()); no escapes, comments, negative or
# viewport-sized lengths, nor lengths past a page.
_STYLE_PROPERTIES = frozenset((
    "color", "background", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "line-height", "letter-spacing", "word-spacing", "text-align",
    "text-decoration", "text-decoration-line", "text-decoration-style", "text-decoration-color",
    "text-transform", "text-indent", "vertical-align", "white-space", "word-break", "word-wrap",
    "overflow-wrap", "margin", "margin-top", "margin-right", "margin-bottom", "margin-left", "padding",
    "padding-top", "padding-right", "padding-bottom", "padding-left", "border", "border-top", "border-right",
    "border-bottom", "border-left", "border-width", "border-style", "border-color", "border-top-width",
    "border-right-width", "border-bottom-width", "border-left-width", "border-top-style",
    "border-right-style", "border-bottom-style", "border-left-style", "border-top-color",
    "border-right-color", "border-bottom-color", "border-left-color", "border-collapse", "border-spacing",
    "border-radius", "width", "height", "min-width", "min-height", "max-width", "max-height", "display",
    "float", "clear", "list-style", "list-style-type", "list-style-position", "table-layout",
    "caption-side", "empty-cells", "overflow", "overflow-x", "overflow-y", "visibility", "page-break-before",
    "page-break-after", "page-break-inside", "box-sizing", "text-overflow", "hyphens", "text-justify",
))  # fmt: skip
_IGNORED_PREFIX = "mso-"  # Word's own properties, which browsers ignore
_COLOUR_FUNCTION = re.compile(r"(?:rgba?|hsla?)\([\d\s.,%/]*\)", re.IGNORECASE)
_STYLE_VALUE = re.compile(r"""[#\w\s.,%'"/+-]*""")  # after colour functions: no ( ) \ ; : ! @ * < > { }
_HEX_COLOUR = re.compile(r"#[0-9a-f]+", re.IGNORECASE)
_LENGTH = re.compile(r"(-?)(\d*\.?\d+)([a-z%]*)", re.IGNORECASE)
# The largest length of each unit a narrative needs, by what the property sizes: a wide table (1200 px);
# text (72 px, and relative sizes that can only shrink: 3em nested 25 deep was 10,000 px); spacing,
# borders and indents (100 px). Viewport units none (the eighteenth attack: sizes are bounded as drawn).
_BOX = {"": 1200.0, "px": 1200.0, "pt": 900.0, "pc": 75.0, "in": 12.5, "cm": 32.0, "mm": 320.0, "%": 100.0,
        "em": 80.0, "rem": 80.0, "ex": 160.0, "ch": 160.0}  # fmt: skip
_TEXT = {"": 5.0, "px": 72.0, "pt": 54.0, "pc": 4.5, "%": 100.0, "em": 1.0, "rem": 4.5, "ex": 2.0, "ch": 2.0}
_WEIGHT = {"": 1000.0}
_SPACING = {"": 5.0, "px": 100.0, "pt": 75.0, "pc": 6.0, "in": 1.0, "cm": 2.5, "mm": 25.0, "%": 100.0,
            "em": 5.0, "rem": 5.0, "ex": 10.0, "ch": 10.0}  # fmt: skip
_BOX_PROPERTIES = frozenset({"width", "height", "min-width", "min-height", "max-width", "max-height"})
_TEXT_PROPERTIES = frozenset({"font", "font-size"})
_GROWING = frozenset({"larger", "xx-large", "xxx-large"})  # font-size keywords that compound or are huge


def _length_max(prop: str) -> dict[str, float]:
    if prop == "font-weight":
        return _WEIGHT
    if prop in _BOX_PROPERTIES:
        return _BOX
    return _TEXT if prop in _TEXT_PROPERTIES else _SPACING


def _style_fault(style: str) -> str | None:
    """Why an inline style is refused, or None."""
    if "/*" in style:
        # A "/*" inside a CSS string opens no comment: stripping comments to match what is left let live
        # declarations through (the sixteenth attack); a narrative's style needs none.
        return "comments"
    for declaration in style.split(";"):
        if not declaration.strip():
            continue
        prop, colon, value = declaration.partition(":")
        prop = prop.strip().lower()
        if not colon or (prop not in _STYLE_PROPERTIES and not prop.startswith(_IGNORED_PREFIX)):
            return f"the property {prop!r}"
        value = _COLOUR_FUNCTION.sub("0", value)
        if not _STYLE_VALUE.fullmatch(value):
            return f"the value of {prop!r} (no function but a colour's, no escapes)"
        if _GROWING.intersection(value.lower().split()):
            return f"the size {value.strip()!r}"
        bounds = _length_max(prop)
        for sign, number, unit in _LENGTH.findall(_HEX_COLOUR.sub("", value)):
            limit = bounds.get(unit.lower())
            if sign or limit is None or float(number) > limit:
                return f"the length {sign}{number}{unit} in {prop!r}"
    return None


# HTML's size attributes, bounded as the style lengths are (a 100,000 px transparent image-link, a
# 100,000 px border: the eighteenth attack): pixels, or a percentage for widths and heights.
_SIZE_ATTRIBUTES = {
    "width": 1200, "height": 1200, "border": 10, "cellpadding": 20, "cellspacing": 20, "colspan": 100,
    "rowspan": 100, "span": 100,
}  # fmt: skip


def _size_fault(attr: str, value: str) -> str | None:
    most = _SIZE_ATTRIBUTES.get(attr)
    if most is None:
        return None
    v = value.strip()
    if attr in ("width", "height") and v.endswith("%"):
        v, most = v[:-1], 100
    return None if v.isdigit() and int(v) <= most else f"{attr}={value!r} (at most {most})"


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
# rows or aligned to the bottom is drawn elsewhere than it stands), no size-changing element inside another
# (thirty nested <small> shrink a decoy letter out of sight), no id or name (DOM clobbering of the
# viewer's own scripts). The thirteenth to seventeenth attacks.
_NOT_PLAIN = frozenset({"bdo", "img", "map", "area", "ruby", "rt", "rp", "tfoot"})
_PLAIN_ATTRIBUTES = frozenset((
    "title", "lang", "href", "abbr", "axis", "headers", "scope", "summary", "cite", "datetime", "border",
    "cellpadding", "cellspacing", "accesskey", "tabindex",
))  # fmt: skip
_SIZED = frozenset({"small", "big", "sub", "sup"})
# What a table's parts and a list hold: anything else (a decoy between two cells) an HTML parser moves out in
# front of the table, joining the cells around it (the sixteenth attack); an li inside a div inside an ol
# is numbered all the same (the seventeenth). A table's parts in the order they are drawn in: a caption or
# thead written after the rows is drawn above them.
_PARTS = {
    "table": ("caption", "colgroup", "thead", "tbody", "tr"),
    "thead": ("tr",),
    "tbody": ("tr",),
    "tr": ("td", "th"),
    "colgroup": ("col",),
    "ol": ("li",),
    "ul": ("li",),
}
_DRAWN_AT = {"caption": 0, "colgroup": 1, "thead": 2, "tbody": 3, "tr": 3}
# An element written self-closed: XML's empty element, but HTML ignores the "/" of all but void elements
# and leaves <small/> open over what follows (forty of them shrink a decoy out of sight).
_SELF_CLOSED = re.compile(r"""<([A-Za-z][\w.:-]*)(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/>""")


def _invalid(message: str, field: str) -> FhirInvalid:
    return FhirInvalid(f"{field}: {message} (FHIR R4 narrative, txt-1)", details={"field": field})


def _internal(url: str) -> bool:
    """Whether an http(s) URL names credentials, localhost, or a loopback, private or link-local address:
    an image fetched there is a request inside the viewer's own network (the eighteenth attack)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return True
    if "@" in parts.netloc or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # A name, resolved by the viewer, not here; but a host whose last label is a number is an address
        # to a browser (WHATWG URL's IPv4 parser), in forms ipaddress does not read (2130706433, 0x7f.1).
        last = host.rstrip(".").rpartition(".")[2]
        return re.fullmatch(r"\d+|0x[0-9a-f]*", last) is not None
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def url_fault(element: str, attr: str, value: str) -> str | None:
    url = "".join(value.split()).lower()  # browsers drop whitespace inside a scheme ("java\tscript:")
    if element == "img" and attr == "src" and _IMAGE_DATA.match(url):
        return None
    if url.startswith(("//", "\\", "/\\", "\\/")):
        return f"{attr} relative to the viewer's scheme"
    scheme = _SCHEME.match(url)
    if scheme is None and attr == "src":
        return "src relative to the viewer's page (a fetch from the viewer's own site, with its cookies)"
    if attr == "src" and scheme is not None and scheme.group(1) in _FETCH_SCHEMES and _internal(url):
        return (
            "src on a loopback or private address, or with credentials (a fetch inside the viewer's network)"
        )
    allowed = _LINK_SCHEMES if attr == "href" else _FETCH_SCHEMES
    if scheme is not None and scheme.group(1) not in allowed:
        return f"{attr} with the scheme {scheme.group(1)!r}"
    return None


def _check(root: Element, field: str) -> None:
    if root.tag != f"{_XHTML}div":
        raise _invalid("the narrative's root is a div in the XHTML namespace", field)
    stack = [(root, 1, False)]  # the element, its depth, whether it is inside a big
    while stack:
        el, depth, big = stack.pop()
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
            if attr in _URL_ATTRIBUTES and (fault := url_fault(name, attr, value)) is not None:
                raise _invalid(f"{name} {fault} is not allowed", field)
            if attr == "style" and (fault := _style_fault(value)) is not None:
                raise _invalid(f"a style formats text and boxes only: not {fault}", field)
            if (fault := _size_fault(attr, value)) is not None:
                raise _invalid(f"a size beyond a page: {fault}", field)
        if name == "big" and big:
            raise _invalid("big inside big (sizes compound: thirty are a page)", field)
        if name in _VOID and ((el.text or "").strip() or len(el)):
            raise _invalid(f"a {name} element holds nothing (a viewer draws its content as text)", field)
        stack += [(child, depth + 1, big or name == "big") for child in el]


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
    # A border's and spacing's size: bounded in every narrative by parse (_SIZE_ATTRIBUTES).
    for attr in el.attrib:
        if attr != _XML_LANG and attr not in _PLAIN_ATTRIBUTES:
            return "attribute", attr
    if (parts := _PARTS.get(name)) is not None:
        if any((text or "").strip() for text in (el.text, *(child.tail for child in el))):
            return "text_in", name
        drawn = 0
        for child in el:
            if (child_name := child.tag[len(_XHTML) :]) not in parts:
                return "element", child_name
            if name == "table":
                if _DRAWN_AT[child_name] < drawn:
                    return "element", child_name  # written below what is drawn after it
                drawn = _DRAWN_AT[child_name]
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
