"""A resource's ``markdown`` (FHIR R4: ``Annotation.text`` of its notes, any ``valueMarkdown``): GitHub
Flavored Markdown a FHIR viewer renders, so held like the narrative: no raw HTML (a ``<script>``, an
``onerror`` or an ``<iframe>`` CommonMark passes through), no images (a tracking fetch), links held to the
narrative's schemes (no ``javascript:``, however encoded) and no footnotes. For the rule that a dispense
names no other organisation, a note is read as rendered as well as written: an empty link, a code span or
an entity between a name's characters is not there once drawn (the sixteenth to eighteenth attacks).
``FHIR_INVALID`` names the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

from adapters.rx.errors import FhirInvalid
from adapters.rx.narrative import resources, url_fault

_MD = MarkdownIt("commonmark")  # with raw HTML recognised: it is found and refused, not passed on
# Every link made a link, whatever its scheme (markdown-it leaves javascript: as text; marked and
# commonmark.js make it a live link, entity-encoded or not): its address is then held to the narrative's.
_MD.validateLink = lambda url: True  # type: ignore[method-assign]  # markdown-it's documented override
_REFUSED = {"html_block": "raw HTML", "html_inline": "raw HTML", "image": "an image"}
# GFM renderers number a footnote reference ("PHARMACY-[^a]" drawn as PHARMACY-¹; the seventeenth attack).
_FOOTNOTE = re.compile(r"\[\^[^\]]*\]")


def fields(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The markdown strings of a resource and of its contained resources, by dotted path."""
    for prefix, res in resources(obj):
        notes = res.get("note")
        if isinstance(notes, list):
            for i, note in enumerate(notes):
                if isinstance(note, dict) and isinstance(note.get("text"), str):
                    yield f"{prefix}note.{i}.text", note["text"]
        yield from _values(res, prefix.rstrip("."))


def _values(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every ``valueMarkdown`` under ``node`` (extensions nest)."""
    if isinstance(node, dict):
        for key, value in node.items():
            at = f"{path}.{key}" if path else key
            if key == "valueMarkdown" and isinstance(value, str):
                yield at, value
            elif key != "contained":
                yield from _values(value, at)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _values(item, f"{path}.{i}")


def _tokens(text: str, field: str) -> list[Token]:
    if _FOOTNOTE.search(text):
        raise FhirInvalid(f"{field}: markdown holds no footnote (GFM numbers it)", details={"field": field})
    tokens = _MD.parse(text)
    for token in tokens:
        for t in (token, *(token.children or ())):
            if (what := _REFUSED.get(t.type)) is not None:
                raise FhirInvalid(
                    f"{field}: markdown holds no {what} (a FHIR viewer renders it)",
                    details={"field": field},
                )
            # markdown-it percent-encodes what marked passes through: a tab from "jav&Tab;ascript:" is %09
            # here and a TAB in the browser, whose URL parser drops it (the eighteenth attack).
            href = unquote(str(t.attrs.get("href", ""))) if t.type == "link_open" else ""
            if href and (fault := url_fault("a", "href", href)) is not None:
                raise FhirInvalid(
                    f"{field}: a markdown link's {fault} is not allowed", details={"field": field}
                )
    return tokens


def check(obj: dict[str, Any]) -> None:
    """The resource's markdown holds no raw HTML and no images (``FHIR_INVALID`` naming the field)."""
    for field, text in fields(obj):
        _tokens(text, field)


def rendered(text: str, field: str) -> str:
    """``text`` as a viewer draws it: its words, link texts and code without the markup around them."""
    parts: list[str] = []
    for token in _tokens(text, field):
        if token.type == "inline":
            for child in token.children or ():
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append("\n")
        elif token.type in ("code_block", "fence"):
            parts.append(token.content)
        elif token.type.endswith("_close") and token.block:
            parts.append("\n")
    return "".join(parts)
