"""Every string of a dispense, by its path, for the workflow to hold to OrgRegistry with one rule: no text
names another organisation than the signing pharmacy (by its registered name or id, :func:`strings`), save
the prescribing hospital within ``authorizingPrescription``. The rules on who performed and where
(``adapters.rx.contents``) read a few fields; a name elsewhere (the narrative, a contained Organization, an
identifier's assigner, a note's text, an extension, a tag) would credit another pharmacy all the same. And
the bounds on a dispense's arrays and texts (docs/formats.md), checked while walking it."""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

from adapters._common import fold
from adapters.rx.errors import RxDispenseMismatch, RxDispenseTooLarge
from adapters.rx.markdown import fields as markdown_fields
from adapters.rx.markdown import rendered
from adapters.rx.medication import name_key
from adapters.rx.narrative import readings
from adapters.rx.trace_codes import MAX_CODES

# A dispense is a few notes and instructions; its texts are sentences, its narrative a page.
MAX_ITEMS = 20
MAX_TEXT = 2_000
MAX_NARRATIVE = 20_000
# Where an id spelled in a text ends: a space or a sentence's punctuation ("the pharmacy, 1 box" spells
# no id; "Organization/pharmacy-1." and "pharmacy_1" do).
_WORD_BREAK = re.compile(r"[\s,;!?，。；！？、]+")
# An id's parts within a word: runs of ASCII letters and digits, or of other letters (pharmacy-1药师 is
# pharmacy, 1 and 药师), between any other characters ('-', '_', '.', '/', …).
_RUN = re.compile(r"[a-z0-9]+|[^\W_a-z0-9]+")
# Characters that reorder what a text shows (UAX #9 embeddings, overrides, isolates and marks).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_GFM_MARKS = re.compile(r"[|~^=+]")
# C1 controls (and DEL): drawn as nothing here, while browsers draw a character reference to U+0080-U+009F
# as its Windows-1252 letter (&#x9F; is Ÿ: PHARMAC&#x9F;-1; the seventeenth attack). Not C0: a GS1 scan's
# trace code carries the group separator (U+001D), and XML refuses C0 in a narrative.
_CONTROL = re.compile("[\x7f-\x9f]")


def _limit(path: str) -> int:
    """The bound on the array at ``path``: the top-level extensions carry the boxes' trace codes."""
    return MAX_CODES + MAX_ITEMS if path == "extension" else MAX_ITEMS


def strings(obj: dict[str, Any]) -> dict[str, str]:
    """Each string of ``obj`` (keys aside: FHIR's are its element names), by dotted path (``note.0.text``,
    ``contained.1.identifier.0.value``), each narrative ``text.div`` as its readings
    (:func:`adapters.rx.narrative.readings`: its text and each attribute's, of a plain narrative only;
    ``FHIR_INVALID`` for a narrative FHIR's txt-1 refuses).
    ``RX_DISPENSE_TOO_LARGE`` naming the field: an array of more than MAX_ITEMS (the top-level extensions,
    MAX_CODES more), a text of more than MAX_TEXT characters (the narrative, MAX_NARRATIVE)."""
    out: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [(key, value) for key, value in obj.items()]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack += [(f"{path}.{key}", item) for key, item in value.items()]
        elif isinstance(value, list):
            if len(value) > (limit := _limit(path)):
                raise RxDispenseTooLarge(
                    f"a dispense's {path} holds at most {limit} items",
                    details={"field": path, "limit": limit},
                )
            stack += [(f"{path}.{i}", item) for i, item in enumerate(value)]
        elif isinstance(value, str):
            div = path == "text.div" or path.endswith(".text.div")  # a contained resource's too
            limit = MAX_NARRATIVE if div else MAX_TEXT
            if len(value) > limit:
                raise RxDispenseTooLarge(
                    f"a dispense's text is at most {limit} characters",
                    details={"field": path, "limit": limit},
                )
            if div:
                out.update({f"{path}{suffix}": text for suffix, text in readings(value, path).items()})
            else:
                out[path] = value
    # A note is markdown: read as drawn too (an empty link or a code span between a name's characters), and
    # with its character references as browsers and commonmark.js resolve them (&#x9F; is Ÿ; markdown-it
    # makes it U+FFFD: the seventeenth attack).
    for path, text in markdown_fields(obj):
        out[f"{path}@markdown"] = drawn = rendered(text, path)
        # GFM renderers draw a table's cells side by side and take ~ ^ == ++ as strikethrough, sub- and
        # superscript, highlight and insertion marks (解放碑~大~药房, 解放碑 | 大药房: the eighteenth attack).
        out[f"{path}@gfm"] = _GFM_MARKS.sub("", drawn)
        if "&" in text:
            out[f"{path}@references"] = html.unescape(text)
    for path, text in out.items():
        if (control := _CONTROL.search(text)) is not None:
            raise RxDispenseMismatch(
                "a dispense's text holds no C1 control characters (a browser draws U+0080-U+009F as letters)",
                details={"field": _field(path), "character": f"U+{ord(control[0]):04X}"},
            )
        if (bidi := _BIDI.search(text)) is not None:
            raise RxDispenseMismatch(
                "a dispense's text may not reorder what it shows (a bidirectional control character)",
                details={
                    "field": _field(path),
                    "character": f"U+{ord(bidi[0]):04X}",
                },
            )
    return out


def _field(path: str) -> str:
    """The element a text of :func:`strings` is in: a narrative's attribute (``text.div@title.0``) is its
    ``text.div``, a note as rendered (``note.0.text@markdown``) its ``note.0.text``."""
    return path.partition("@")[0]


# OrgRegistry's names and ids, keyed once: the registry's few dozen, for every text of every dispense.
_name_key = lru_cache(maxsize=1024)(name_key)


@lru_cache(maxsize=256)
def _pattern(keys: tuple[str, ...]) -> re.Pattern[str] | None:
    # One search for all of OrgRegistry's keys: a dispense has a few dozen texts, the registry as many keys.
    present = sorted({key for key in keys if key}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, present))) if present else None


def _found(text: str, own: str, keys: tuple[str, ...]) -> bool:
    """Whether one of ``keys`` is ``text`` or is found in it, or in it reversed, once the signer's ``own``
    key is taken out. Reversed: a right-to-left override or ``<bdo dir="rtl">`` shows 房药大碑放解 as
    解放碑大药房."""
    rest = text.replace(own, "\0") if own else text  # \0: no key holds it, none spans the cut
    pattern = _pattern(keys)
    if pattern is None:
        return False
    back = text[::-1]
    rest_back = back.replace(own[::-1], "\0") if own else back
    return (
        text in keys
        or back in keys
        or pattern.search(rest) is not None
        or pattern.search(rest_back) is not None
    )


def id_words(text: str) -> list[list[str]]:
    """The words of ``text`` an id may be spelled in, each as its parts (``_RUN``), read as :func:`fold`
    reads them: split at spaces and sentence punctuation (``_WORD_BREAK``)."""
    return [_RUN.findall(word) for word in _WORD_BREAK.split(fold(text))]


@lru_cache(maxsize=1024)
def _id_key(org: str) -> str:
    """An id's parts, joined: what a text's parts spell when they spell it."""
    return "".join(part for word in id_words(org) for part in word)


def _spells(words: list[list[str]], keys: Collection[str], own: str) -> bool:
    """Whether consecutive parts of one word are, joined, one of ``keys`` (pharmacy-1 in
    "Organization/pharmacy-1." and "pharmacy_1药师", not in "hospitalized": an id is whole parts), the
    signer's ``own`` id's parts taken out first (pharmacy-2-east names no pharmacy-2 of another)."""
    for parts in words:
        edges = [0]
        for part in parts:
            edges.append(edges[-1] + len(part))
        joined, at = "".join(parts), set(edges)
        mine: set[int] = set()
        if own:
            for i, start in enumerate(edges):
                if joined.startswith(own, start) and start + len(own) in at:
                    mine.update(range(i, edges.index(start + len(own))))
        for i, start in enumerate(edges[:-1]):
            if i in mine:
                continue
            for key in keys:
                end = start + len(key)
                if (
                    key
                    and joined.startswith(key, start)
                    and end in at
                    and not mine.intersection(range(i, edges.index(end)))
                ):
                    return True
    return False


def _names_another(display: str, others: Sequence[str], signer: str | None) -> bool:
    """Whether ``display`` is or contains (spaces, punctuation, case and width aside: ``name_key``) one of
    ``others``' names: "解放碑大药房 执业药师 王敏" signed by 观音桥药店 names another pharmacy's pharmacist.
    A name found only within the signer's own (another organisation named 观音桥药店 beside the signer's
    观音桥药店二部) is the signer's: it is looked for once the signer's name is taken out."""
    return _found(name_key(display), _name_key(signer), tuple(map(_name_key, others)))


def _ids_another(display: str, others: Sequence[str], signer: str) -> bool:
    """Whether a word of ``display`` spells (separators, case and look-alikes aside: :func:`id_words`) the id
    of one of ``others`` ("pharmacy-1 药师"), save where it spells the signer's own."""
    return _spells(id_words(display), [_id_key(o) for o in others], _id_key(signer) if signer else "")


_PRESCRIPTION = "authorizingPrescription."  # where the prescribing hospital may be named


def check_texts(
    texts: Mapping[str, str],
    orgs: Sequence[tuple[str, Any, str]],
    signer: str,
    cleared: Collection[str] = (),
    issuer: str | None = None,
) -> None:
    """No text of the dispense (:func:`strings`) names an organisation of ``orgs`` (OrgRegistry's ``(id,
    role, name)``) other than the ``signer``, by its registered name or id as :func:`_names_another` and
    :func:`_ids_another` find them (a reference ``Organization/pharmacy-1`` spells its id): save the
    pharmacists ``cleared`` as the signer's by the performer rules, and the ``issuer`` (the prescribing
    hospital) within ``authorizingPrescription``. ``RX_DISPENSE_MISMATCH`` naming the field."""
    name = next((n for org, _role, n in orgs if org == signer), None)
    own = _name_key(name), _id_key(signer)
    others = [org for org, _role, _n in orgs if org != signer and org not in cleared]
    keyed = [(_name_key(n), _id_key(org)) for org, _role, n in orgs if org in others]
    within = [(_name_key(n), _id_key(org)) for org, _role, n in orgs if org in others and org != issuer]
    names, ids = (tuple(k for k, _i in keyed), tuple(i for _k, i in keyed))
    names_within, ids_within = (tuple(k for k, _i in within), tuple(i for _k, i in within))
    for field, text in sorted(texts.items()):
        inside = field.startswith(_PRESCRIPTION)
        if _found(name_key(text), own[0], names_within if inside else names) or _spells(
            id_words(text), ids_within if inside else ids, own[1]
        ):
            raise RxDispenseMismatch(
                "dispense names another organisation than the signing pharmacy in its text",
                details={"field": _field(field)},
            )
