"""Helpers every adapter shares: JSON loading, canonical bytes, model validation, RFC 3339 instants."""

from __future__ import annotations

import contextlib
import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

from confusable_homoglyphs.confusables import confusables_data
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from adapters.abc import AdaptContext, AdaptedPayload, ChainView, Grant, ReadPolicy
from adapters.errors import DateInFuture, ExpiryNotInFuture, ExpiryTooFar, PayloadInvalid
from provenance.chain.contracts import ContractReverted
from provenance.crypto.sm3 import keyed_hex, sm3_hex
from provenance.errors import DuplicateKey, FormatError, LedgerError
from provenance.records import canonical_bytes, unique_object
from provenance.timestamps import chain_time, format_rfc3339, parse_rfc3339, to_unix
from provenance.types import Digest, RecordKind, Subject

M = TypeVar("M", bound=BaseModel)
_T = TypeVar("_T")

# Wire models of our own JSON kinds: unknown keys refused, no type coercion, immutable once validated.
STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)

# Identifiers that end up inside subjects ("rx:<id>") and facts: no spaces, colons only inside. As a pydantic
# ``pattern`` it runs on the Rust regex crate, where ``$`` is the end of the text; Python code matching it
# uses ``fullmatch`` (Python's ``$`` also matches before a final newline).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
# How far before the gateway records it a record may say something happened (a station or a pharmacy
# uploading after an outage): single environmental readings' DataTime, a dispense's whenHandedOver.
MAX_BACKDATE = timedelta(hours=72)


_SEPARATORS = re.compile(r"[\W_]+")  # anything but a letter or digit (of any script)


def id_key(value: str) -> str:
    """What an id names, for identity: case and the separators between its letter-or-digit runs (any run of
    '-', '_', '.', …; none leading or trailing) make no other thing. Gas asset ids (PIPE-0EC5, pipe_0ec5)
    and the organisations a prescription dispense names (Practitioner/Pharmacy-1., pharmacy-1) compare so."""
    return _SEPARATORS.sub("-", value.upper()).strip("-")


# Han numerals, the common and the financial (大写) forms, the archaic 弌弍弎, 幺 (one, as read out in
# numbers) and the Suzhou (Hangzhou) numerals 〡..〩, as the digits they write: "pharmacy一" and
# "山城第1人民医院" meet pharmacy-1 and 山城第一人民医院 (traditional financial forms, for id_skeleton,
# which does not convert traditional characters as name_key does).
HAN_DIGITS = str.maketrans(
    {
        c: str(i % 10)
        for s in (
            "〇一二三四五六七八九",
            "零壹贰叁肆伍陆柒捌玖",
            "零壹貳參肆伍陸柒捌玖",
            "〇〡〢〣〤〥〦〧〨〩",
        )
        for i, c in enumerate(s)
    }
    | {"幺": "1", "弌": "1", "弍": "2", "弎": "3"}
    # and the marks drawn as 一 in a Chinese text: the katakana long vowel, the CJK stroke, bopomofo I
    | {"ー": "1", "㇐": "1", "ㄧ": "1"}
)


def _confusable_letters() -> dict[int, str]:
    """Unicode's confusables (UTS #39, ``confusable_homoglyphs``' copy of confusables.txt) that look like an
    ASCII letter or digit, each as one ASCII character per look-alike class: Cyrillic а and ɑ as a; О, O
    and 0 as o; Ⅰ, I, 1, l (and so L and i, by case) as i. Both cases of a letter are one class, so that
    case folding before or after keeps one character per class; a class's lower-case letter is taken."""
    parent: dict[str, str] = {}

    def root(c: str) -> str:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for key, glyphs in confusables_data.items():
        for glyph in glyphs:
            other = glyph["c"].replace("\u200e", "")  # the data marks right-to-left glyphs so
            if len(key) == 1 and len(other) == 1:
                parent[root(key)] = root(other)
    for upper in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":  # one class per letter whatever its case: I, l and i meet
        parent[root(upper)] = root(upper.lower())
    classes: dict[str, list[str]] = {}
    for c in list(parent):
        classes.setdefault(root(c), []).append(c)
    table: dict[int, str] = {}
    for members in classes.values():
        ascii_ = sorted(c for c in members if c.isascii() and c.isalnum())
        if ascii_:
            rep = next((c for c in ascii_ if c.islower()), ascii_[0])
            table.update({ord(c): rep for c in members})
    return table


# Characters Unicode names as a Latin letter's form without decomposing them: ᴘ (LATIN LETTER SMALL CAPITAL
# P), 🅿 (NEGATIVE SQUARED LATIN CAPITAL LETTER P), 🇵 (REGIONAL INDICATOR SYMBOL LETTER P).
_LATIN_NAMED = re.compile(r"(?:.* )?(?:LATIN|REGIONAL INDICATOR SYMBOL) .*\b([A-Z])")
# Latin letters with a stroke, which no decomposition takes apart (ł is not l + a mark).
_STROKED = dict(zip("øØłŁđĐħĦŧŦıƚ", "ooLLddhhttil", strict=True))


class _Fold(dict[int, str | None]):
    """What texts compared for an organisation's id or name are read as (a ``str.translate`` table, filled
    as characters are met): default-ignorable characters, marks (combining, enclosing, variation
    selectors) and the braille blank dropped (drawn as nothing, or over the letter beside them); a decimal
    digit of any script as its ASCII digit (pharmacy-١); a letter with a stroke as its letter (hospitał);
    then a look-alike of an ASCII letter or digit as that character (``_confusable_letters``), a lower-case
    Cyrillic letter whose capital is one as that letter (н as H). Read after NFKD, so that an accented
    letter is its letter and a mark (phármaçy)."""

    def __missing__(self, c: int) -> str | None:
        ch = chr(c)
        if c == 0x2800 or unicodedata.category(ch)[0] == "M" or _ignorable(c):
            out = None
        else:
            if (digit := unicodedata.digit(ch, None)) is not None:  # also ➀ ❶ (No), which NFKD keeps
                ch = str(digit)
            elif (latin := _LATIN_NAMED.fullmatch(unicodedata.name(ch, ""))) is not None:
                ch = latin[1].lower()  # small capitals, negative squared and regional-indicator letters
            ch = _STROKED.get(ch, ch)
            out = _CONFUSABLE.get(ord(ch))
            if out is None:
                # A Cyrillic small letter drawn as a Latin small capital (н м т as ʜ ᴍ ᴛ): UTS #39 maps its
                # capital (Н → H) but not it; ids compare case-folded (the sixteenth attack). Not Greek: μ is
                # a dose's micro, and mg is not μg.
                upper = ch.upper()
                cyrillic = unicodedata.name(ch, "").startswith("CYRILLIC SMALL LETTER") and len(upper) == 1
                out = _CONFUSABLE.get(ord(upper), ch) if cyrillic else ch
        self[c] = out
        return out


def id_skeleton(value: str) -> str:
    """What an id names when written with or without separators: its letters and digits alone, upper-cased
    (``pharmacy1``, ``Pharmacy-1.``, ``pharmacy_1`` are one). For comparison only, never a stored key: it
    refuses more than :func:`id_key` (``pharmacy-11`` and ``pharmacy1-1`` collide), which suits a check
    that an id is not another organisation's, and persisted keys (gas ``asset_key``) keep ``id_key``. Read
    after NFKD: ``ＰＨＡＲＭＡＣＹ１`` and ``𝐩𝐡𝐚𝐫𝐦𝐚𝐜𝐲1`` are ``pharmacy1``; with Han numerals as digits
    (``HAN_DIGITS``): ``pharmacy一`` is too; then as :data:`FOLD` reads it (invisible characters and marks
    dropped, any script's digits as digits, look-alikes as the ASCII letter: ``phаrmacy-١``, ``pharmacy-l``,
    ``pharmacy-Ⅰ``) and case-folded. The skeleton of ``pharmacy-1`` is ``PHARMACYI``."""
    return _SEPARATORS.sub("", fold(value).upper())


def fold(value: str) -> str:
    """``value`` as texts are compared for ids (:func:`id_skeleton`): NFKD, Han numerals as digits,
    :data:`FOLD`, case-folded."""
    return unicodedata.normalize("NFKD", value).translate(HAN_DIGITS).translate(FOLD).casefold()


# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15): drawn as nothing by a
# renderer that does not know them. Python's unicodedata does not carry the property; the list is short.
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip


def _ignorable(c: int) -> bool:
    return any(lo <= c <= hi for lo, hi in _IGNORABLE)


_CONFUSABLE = _confusable_letters()
FOLD = _Fold()  # shared: filled once per character met
# The punctuation a name uses beside its letters, digits and spaces: 解放碑·大药房, ＸＸ（…）, Dr. Wang-Li.
_NAME_PUNCTUATION = frozenset(" \u3000·・-.()（）")


def _han(c: str) -> bool:
    # Python's unicodedata has no Script property; the Han ideographs are the ones Unicode names so.
    return unicodedata.name(c, "").startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH"))


def name_fault(text: str) -> str | None:
    """The first character (as ``U+XXXX``) that a name displayed to a reader may not carry, else None. An
    allow-list, read after NFKC (a full-width or mathematical letter is its ASCII letter): Han ideographs,
    ASCII letters and digits, spaces and the punctuation above, none default-ignorable. Marks (a combining
    low line, a variation selector), format and control characters, Hangul fillers (letters drawn as
    nothing), braille blanks and other symbols, private-use and unassigned code points let a name read as
    another's (解<U+3164>放碑大药房) while comparing otherwise; another script's letters (Cyrillic р,
    Greek ο, katakana ロ beside Han 口) and another script's digits (Arabic-Indic ١, Devanagari १) read as
    the letters and digits of an id or a name while comparing as others. The network's names are Chinese
    and its ids ASCII (docs/formats.md): no sample needs kana, Hangul or accented letters."""
    for c in text:
        if c in _NAME_PUNCTUATION:
            continue
        if _ignorable(ord(c)) or not all(
            n in _NAME_PUNCTUATION or (n.isascii() and n.isalnum()) or _han(n)
            for n in unicodedata.normalize("NFKC", c)
        ):
            return f"U+{ord(c):04X}"
    return None


def _no_constant(name: str) -> NoReturn:
    raise PayloadInvalid("JSON number out of range", details={"field": name})


# RFC 8785 numbers are IEEE doubles: refuse at parse time what canonicalisation would refuse later.
_MAX_SAFE_INT = 2**53 - 1


def _int(text: str) -> int:
    if len(text) > 17 or abs(value := int(text)) > _MAX_SAFE_INT:
        raise PayloadInvalid("JSON integer out of range", details={"field": "$"})
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PayloadInvalid("JSON number out of range", details={"field": "$"})
    return value


def load_json_object(payload: object) -> dict[str, Any]:
    """Turn a payload (UTF-8 JSON bytes or a mapping) into a plain JSON object, or raise PayloadInvalid."""
    try:
        if isinstance(payload, bytes | bytearray | memoryview):
            text = bytes(payload).decode("utf-8")
            obj = json.loads(
                text,
                object_pairs_hook=unique_object,  # JSON_DUPLICATE_KEY, at any depth
                parse_constant=_no_constant,
                parse_int=_int,
                parse_float=_float,
            )
        elif isinstance(payload, Mapping):
            # Through canonical JSON and back, so a mapping holding non-JSON values is refused here
            # and every later step sees exactly what a JSON client would have sent.
            obj = json.loads(canonical_bytes(dict(payload)))
        else:
            raise PayloadInvalid("payload must be JSON bytes or a mapping", details={"field": "$"})
    except (PayloadInvalid, DuplicateKey):
        raise
    except UnicodeDecodeError as exc:
        raise PayloadInvalid("payload is not UTF-8", details={"field": "$", "offset": exc.start}) from exc
    except json.JSONDecodeError as exc:
        raise PayloadInvalid(
            f"payload is not JSON: {exc.msg}", details={"field": "$", "offset": exc.pos}
        ) from exc
    except (FormatError, TypeError, ValueError) as exc:
        raise PayloadInvalid(f"payload is not JSON: {exc}", details={"field": "$"}) from exc
    except RecursionError as exc:
        raise PayloadInvalid("payload nested too deeply", details={"field": "$"}) from exc
    if not isinstance(obj, dict):
        raise PayloadInvalid("payload must be a JSON object", details={"field": "$"})
    return obj


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of ``obj`` (values outside the JSON number domain are a PayloadInvalid)."""
    try:
        return canonical_bytes(obj)
    except FormatError as exc:
        raise PayloadInvalid(f"payload cannot be canonicalised: {exc}", details={"field": "$"}) from exc
    except RecursionError as exc:
        raise PayloadInvalid("payload nested too deeply", details={"field": "$"}) from exc


def adapted(kind: str, subject: str, normalised: Mapping[str, Any], facts: dict[str, Any]) -> AdaptedPayload:
    """Build the :class:`AdaptedPayload` for a normalised JSON object."""
    return adapted_bytes(kind, subject, canonical_json(normalised), facts)


def adapted_bytes(kind: str, subject: str, canonical: bytes, facts: dict[str, Any]) -> AdaptedPayload:
    """Build the :class:`AdaptedPayload` for canonical bytes made already (a template's: ``env.fastpath``)."""
    return AdaptedPayload(
        kind=RecordKind(kind),
        subject=Subject(subject),
        canonical=canonical,
        digest=Digest(sm3_hex(canonical)),
        facts=facts,
    )


# Auditors and regulators read every record of every domain, payloads included (docs/security.md).
OVERSIGHT_ROLES = ("auditor", "regulator")


def everything(kinds: tuple[str, ...] | frozenset[str]) -> Grant:
    """A grant of every envelope and payload of ``kinds``."""
    return Grant(frozenset(kinds), frozenset(kinds))


def domain_policy(
    kinds: tuple[str, ...],
    *,
    roles: Mapping[str, Grant] | None = None,
    parties: Mapping[str, Grant] | None = None,
    holders: Grant | None = None,
    code_kind: str | None = None,
    code_matches: Callable[[Mapping[str, Any], str], bool] | None = None,
    code_writes: frozenset[str] = frozenset(),
) -> ReadPolicy:
    """A domain's :class:`ReadPolicy`: auditors and regulators read all of ``kinds``, plus ``roles``."""
    oversight = {role: everything(kinds) for role in OVERSIGHT_ROLES}
    return ReadPolicy(
        kinds=frozenset(kinds),
        roles={**oversight, **(roles or {})},
        parties=parties or {},
        holders=holders,
        code_kind=code_kind,
        code_matches=code_matches,
        code_writes=code_writes,
    )


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "$"


def validate_model(
    model: type[M], data: Mapping[str, Any], error: type[PayloadInvalid] = PayloadInvalid
) -> M:
    """Validate ``data`` with ``model``; a failure becomes ``error`` naming every bad field (never values)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, error, model.__name__) from exc


def validation_error(exc: ValidationError, error: type[PayloadInvalid], what: str) -> PayloadInvalid:
    """Translate a pydantic ValidationError; the input values are left out (they may be personal data)."""
    errors = [{"field": _loc(e["loc"]), "type": e["type"], "message": e["msg"]} for e in exc.errors()[:20]]
    first = errors[0] if errors else {"field": "$", "message": "invalid"}
    return error(
        f"invalid {what}: {first['field']}: {first['message']}",
        details={"field": first["field"], "errors": errors},
    )


def parse_instant(value: object, field: str, error: type[PayloadInvalid] = PayloadInvalid) -> datetime:
    """Parse an RFC 3339 date-time with an explicit offset (``T``, ``Z``) into an aware datetime (our own
    kinds' instants; FHIR's ``dateTime``: ``adapters.rx.fhir.when``)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not RFC 3339, or no such day (February 30)
            return parse_rfc3339(value)
    raise error(
        f"{field} must be an RFC 3339 date-time with an offset, e.g. 2026-11-25T09:30:00+08:00",
        details={"field": field},
    )


def check_instant(value: str) -> str:
    """Pydantic after-validator: the string is an RFC 3339 date-time with an offset."""
    try:
        parse_instant(value, "value")
    except PayloadInvalid as exc:
        raise ValueError(
            "must be an RFC 3339 date-time with an offset, e.g. 2026-11-25T09:30:00+08:00"
        ) from exc
    return value


def check_not_future(
    when: datetime, field: str, ctx: AdaptContext, error: type[PayloadInvalid] = DateInFuture
) -> None:
    """A date the payload declares as past (authored, handed over, requested…) may not lie beyond the
    gateway's clock plus the allowed skew (``DATE_IN_FUTURE``); rules that compare it with other dates run
    after this."""
    if ctx.now is not None and when > ctx.now + ctx.max_clock_skew:
        raise error(
            f"{field} is dated in the future (beyond the gateway's clock plus "
            f"{int(ctx.max_clock_skew.total_seconds())} s)",
            details={"field": field, "value": rfc3339_utc(when)},
        )


def past_instant(
    value: object, field: str, ctx: AdaptContext, error: type[PayloadInvalid] = DateInFuture
) -> str:
    """A date the payload declares as past (``parse_instant``, ``check_not_future``), in the form facts use
    (RFC 3339 UTC)."""
    when = parse_instant(value, field)
    check_not_future(when, field, ctx, error)
    return rfc3339_utc(when)


# HMAC-SM3 message label of a pseudonym: the format's version, and a separation from other uses of the key.
PSEUDONYM_LABEL = b"shancheng-provenance/pseudonym@v1\n"


def pseudonym(ctx: AdaptContext, what: str, value: str) -> str | None:
    """``HMAC-SM3(deployment key, label ‖ what ‖ NUL ‖ value)`` as hex: a personal identifier in facts, which
    the gateway's database keeps in clear beside the encrypted payload. Keyed, so that a dump of the
    database (or a reader of facts) cannot test guesses of a low-entropy reference ("Patient/bob"); None
    without the key (a client's own adapt: facts stay on the gateway)."""
    if ctx.pseudonym_key is None:
        return None
    return keyed_hex(ctx.pseudonym_key, PSEUDONYM_LABEL, what, value)


def rfc3339_utc(dt: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with a ``Z`` (the form facts use)."""
    return format_rfc3339(dt)


def unique_items(what: str) -> AfterValidator:
    """A list validator refusing repeated items (``what`` names them in the error)."""

    def check(items: list[str]) -> list[str]:
        if len(set(items)) != len(items):
            raise ValueError(f"{what} must be unique")
        return items

    return AfterValidator(check)


# Field types shared by the JSON-document adapters (sharing, party).
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Instant = Annotated[str, AfterValidator(check_instant)]


# --- rules' chain reads ---------------------------------------------------------------------------------


def stricter(read: Callable[[], _T]) -> _T | None:
    """A chain read that only makes a rule stricter: None while the chain is unreachable (a revert is
    the contract's answer, raised)."""
    try:
        return read()
    except ContractReverted:
        raise
    except LedgerError:
        return None


def check_expiry(chain: ChainView, instant: str, field: str, max_ahead: timedelta) -> None:
    """An expiry a contract requires after ``block.timestamp`` (whole seconds, EXPIRY_NOT_IN_FUTURE) and at
    most ``max_ahead`` after it (EXPIRY_TOO_FAR). The clock is the earliest ``block.timestamp`` the call can
    meet: the later block that mines it only moves the first bound closer and the second away. While the
    chain is unreachable the gateway's clock decides: such a record may still be refused on chain (then it
    is marked rejected)."""
    clock = int(chain.clock().timestamp())
    details = {"field": field, "expires_at": instant, "chain_time": chain_time(clock)}
    if to_unix(instant) <= clock:
        raise ExpiryNotInFuture(
            f"{field} ({instant}) is not after the chain's clock ({chain_time(clock)})", details=details
        )
    latest = clock + int(max_ahead.total_seconds())
    if to_unix(instant) > latest:
        raise ExpiryTooFar(
            f"{field} ({instant}) is more than {max_ahead.days} days after the chain's clock "
            f"({chain_time(clock)}): the contract refuses it (ExpiryTooFar)",
            details={**details, "latest_allowed": chain_time(latest)},
        )
