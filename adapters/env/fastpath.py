"""A batch's readings in one pass: the common shape of an HJ 212 packet recognised by one regular expression,
its CRC checked with the whole batch's (``hj212.crc16_many``), its normal form's canonical bytes written
from a template. What the patterns do not take, or any check here does not pass, goes through ``EnvAdapter``
as a single reading would: that gives the verdict (and the error code) whenever this path gives none, so the
fast path may only ever accept less, never differently (``tests/adapters/test_env_fastpath.py`` holds it to
the codec's bytes and verdicts).

Taken: header ``[QN=…;]ST=…;CN=…;PW=…;MN=…;[Flag=…;]`` in the standard's order, ``CP=&&DataTime=…`` then
pollutant items whose fields are the numeric ones or ``Flag``, none repeated. Left to the codec: PNUM/PNO
(subpackets), plain CP items besides DataTime, any other field name, a repeated item, an invalid date (second
60 too), a pollutant code outside the station class's family (``stclass``: checked once per shape and ST), a
real-time (CN 2011) pollutant measured without an Rtd.

A station's packets mostly share their *shape*: the header members present and the sequence of pollutant
items, only the values differing. The first packet of a shape is read by the generic pattern; its shape then
becomes a pattern of its own (the item names literal, a group per value) and a template of its canonical
bytes (JCS: keys sorted, so the values' places are fixed), and each later packet of that shape is one match
and one string format: no per-item work in Python.

Single readings (``env.reading``, :func:`reading`; a data platform forwards a fleet's in bulk) take the same
path one at a time: the shapes met last are tried first, and a shape gets its pattern only once
:data:`_SINGLE_COMPILE` readings of it went through the codec (a compile costs ~10 readings' codec work, so
readings of ever new shapes cost at most about twice the codec's, and a fleet's few shapes are compiled
once).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from adapters.abc import AdaptContext
from adapters.env.payload import READING_COMMANDS, misfit
from adapters.env.stclass import CODE_FAMILY, family_of
from adapters.hj212 import FLAG_SUBPACKET, NUMERIC_FIELDS, crc16, crc16_many

_NUMBER = r"-?[0-9]{1,15}(?:\.[0-9]{1,10})?"  # hj212._NUMBER
_FLAG = "[NFMSDCTB]"  # hj212.DATA_FLAGS
_FIELDS = "|".join(sorted(NUMERIC_FIELDS, key=len, reverse=True))
_HEAD = (
    r"##([0-9]{4})"
    r"((?:QN=([0-9]{17});)%sST=([0-9]{2});CN=([0-9]{4});PW=[A-Za-z0-9]{1,32};MN=([A-Za-z0-9]{1,24});"
    r"(?:Flag=(?=[0-9]{1,3};)0*([0-9]+);)%sCP=&&DataTime=([0-9]{14})"
)
_TAIL = r"&&)([0-9A-Fa-f]{4})\r\n"
_ITEM = rf"[A-Za-z0-9]{{1,16}}-(?:(?:{_FIELDS})={_NUMBER}|Flag={_FLAG})"
_PACKET = re.compile(_HEAD % ("?", "?") + rf"((?:[;,]{_ITEM})+)" + _TAIL)
_ITEMS = re.compile(rf"([;,])([A-Za-z0-9]{{1,16}})-({_FIELDS}|Flag)=([^;,]+)")
_PRIMARY = {"2011": "Rtd"}  # payload._PRIMARY
_HEADER = 8  # groups before the items': length, data, qn, st, cn, mn, flag, DataTime
_SHAPES_PER_BATCH = 16  # patterns compiled for one batch at most (a compile is ~100 readings' work)
_shapes: dict[tuple[Any, ...], _Shape] = {}  # process-wide, bounded
_SINGLE_COMPILE = 8  # single readings of a shape read by the codec before it gets its pattern
_RECENT = 4  # shapes of single readings tried before the generic pattern
_recent: tuple[_Shape, ...] = ()  # the latest first (replaced whole: threads read it without a lock)
_sightings: dict[tuple[Any, ...], int] = {}  # single readings of shapes without a pattern yet, bounded


class Fast:
    """A reading taken by the fast path: its canonical bytes and what a batch checks of it."""

    __slots__ = ("_m", "_shape", "abnormal", "canonical", "cn", "data_time", "mn", "st")

    def __init__(self, m: re.Match[str], shape: _Shape, canonical: bytes, data_time: str) -> None:
        self._m, self._shape = m, shape
        self.canonical = canonical
        self.mn, self.st, self.cn = m[6], m[4], m[5]
        self.data_time = data_time  # UTC, RFC 3339 in whole seconds
        fg = shape.flag_groups
        flags = m.group(*fg) if len(fg) > 1 else tuple(m[g] for g in fg)
        # codes whose data flag is not N, sorted (most readings: none, one tuple comparison)
        self.abnormal = (
            []
            if flags == shape.all_normal
            else [code for code, f in zip(shape.flag_codes, flags, strict=True) if f != "N"]
        )

    def facts(self) -> dict[str, Any]:
        """The ``env.reading`` facts, as ``payload._facts`` makes them (its members' order too: a single
        reading's are stored)."""
        m, shape = self._m, self._shape
        primary = _PRIMARY.get(self.cn, "Avg")
        return {
            "mn": self.mn,
            "st": self.st,
            "cn": self.cn,
            "interval": READING_COMMANDS[self.cn],
            "data_time": self.data_time,
            "pollutants": {code: float(m[g]) for code, g in shape.by_field.get(primary, ())},
            "flags": {code: m[g] for code, g in shape.by_field.get("Flag", ())},
            "abnormal": self.abnormal,
        }


@dataclass(frozen=True, slots=True)
class _Shape:
    pattern: re.Pattern[str]
    template: str  # the canonical bytes, a %s per value in JCS order
    order: tuple[int, ...]  # the groups filling the template, in its order
    flag_codes: tuple[str, ...]  # the codes of the Flag items, sorted
    flag_groups: tuple[int, ...]  # their groups
    all_normal: tuple[str, ...]  # ("N", …): every flag N
    fields: tuple[tuple[str, str, int], ...]  # (code, field, group) of each numeric item
    by_field: dict[
        str, tuple[tuple[str, int], ...]
    ]  # field -> (code, group), codes as first met (the codec's)
    fits: frozenset[str]  # the data CNs whose layout its items keep (payload.misfit): the codec the others
    family: str | None  # the code family (``stclass``) all its codes are of, if one


def _key(qn: bool, flag: bool, items: list[tuple[str, str, str, str]]) -> tuple[Any, ...] | None:
    """A shape's key (None: an item repeated, for the codec to name)."""
    if len({(code, name) for _, code, name, _ in items}) != len(items):
        return None
    return (qn, flag, tuple((sep, code, name) for sep, code, name, _ in items))


def _shape(qn: bool, flag: bool, items: list[tuple[str, str, str, str]], *, compile: bool) -> _Shape | None:
    """The shape of a packet read by the generic pattern (None: an item repeated, for the codec to name,
    or a shape not seen before when ``compile`` is false)."""
    key = _key(qn, flag, items)
    if key is None:
        return None
    found = _shapes.get(key)
    if found is not None or not compile:
        return found
    body = "".join(
        f"{sep}{code}-{name}=({_FLAG if name == 'Flag' else _NUMBER})" for sep, code, name, _ in items
    )
    pattern = re.compile(_HEAD % ("" if qn else "{0}", "" if flag else "{0}") + body + _TAIL)
    # The normal form with a token per value: its JCS bytes place the values; the tokens become %s.
    groups = {"mn": 6, "st": 4, "cn": 5, "qn": 3, "flag": 7, "data_time": 8}
    normal: dict[str, Any] = {k: f"@{g}@" for k, g in groups.items()}  # "@" is in no key, code or name
    if not qn:
        del normal["qn"]
    if not flag:
        del normal["flag"]
    pollutants: dict[str, dict[str, str]] = {}
    for i, (_, code, name, _) in enumerate(items):
        pollutants.setdefault(code, {})[name] = f"@{_HEADER + 1 + i}@"
    normal["pollutants"] = pollutants
    text = orjson.dumps(normal, option=orjson.OPT_SORT_KEYS).decode("ascii")
    # Flag is an integer: its group is its text without leading zeros (the pattern's 0*), so "%s" of it.
    text = text.replace(f'"@{groups["flag"]}@"', f"@{groups['flag']}@")
    parts = text.split("@")
    order = tuple(int(p) for p in parts[1::2])
    template = "%s".join(p.replace("%", "%%") for p in parts[::2])
    flags = sorted((code, _HEADER + 1 + i) for i, (_, code, n, _) in enumerate(items) if n == "Flag")
    names: dict[str, dict[str, int]] = {}  # code -> field -> group, codes in the order first met
    for i, (_, code, name, _) in enumerate(items):
        names.setdefault(code, {})[name] = _HEADER + 1 + i
    by_field: dict[str, list[tuple[str, int]]] = {}
    for code, groups in names.items():
        for name, g in groups.items():
            by_field.setdefault(name, []).append((code, g))
    shape = _Shape(
        pattern=pattern,
        template=template,
        order=order,
        flag_codes=tuple(code for code, _ in flags),
        flag_groups=tuple(g for _, g in flags),
        all_normal=("N",) * len(flags),
        fields=tuple((code, n, _HEADER + 1 + i) for i, (_, code, n, _) in enumerate(items) if n != "Flag"),
        by_field={name: tuple(found) for name, found in by_field.items()},
        family=family_of(code for _, code, _, _ in items),
        fits=frozenset(cn for cn in READING_COMMANDS if misfit(cn, names) is None),
    )
    if len(_shapes) >= 256:
        _shapes.clear()
    _shapes[key] = shape
    return shape


def _local(v: str) -> datetime:
    return datetime(int(v[:4]), int(v[4:6]), int(v[6:8]), int(v[8:10]), int(v[10:12]), int(v[12:14]))


class _Clock:
    """DataTime (station local, ``YYYYMMDDhhmmss``) to UTC RFC 3339, minute by minute: readings share their
    minutes (a batch's, a fleet's), so one datetime a minute (when the offset is whole minutes), kept for the
    process (:func:`_minute`), a lookup a reading."""

    def __init__(self, ctx: AdaptContext) -> None:
        self.offset = ctx.hj212_utc_offset
        self.whole = self.offset % timedelta(minutes=1) == timedelta(0)
        latest = ctx.now + ctx.max_clock_skew if ctx.now is not None else None
        # A reading in whole seconds is later than ``latest`` iff it is later than its whole second.
        self.latest = None if latest is None else latest.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def utc(self, stamp: str) -> str | None:
        """The instant, or None if it is no valid date or lies in the future."""
        if self.whole:
            prefix = _minute(stamp[:12], self.offset)
            second = stamp[12:]
            at = None if prefix is None or second >= "60" else prefix + second + "Z"
        else:
            at = _convert(stamp, self.offset, 19)
        return None if at is None or (self.latest is not None and at > self.latest) else at


@functools.lru_cache(maxsize=4096)
def _minute(minute: str, offset: timedelta) -> str | None:
    """A local minute (``YYYYMMDDhhmm``) as the UTC text of its start, ``…T01:00:`` (None: no valid date)."""
    return _convert(minute + "00", offset, 17)


def _convert(stamp: str, offset: timedelta, keep: int) -> str | None:
    try:
        utc = (_local(stamp) - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    if utc.year < 1000:
        return None  # not four digits: left to the codec (and RFC 3339 text would not sort)
    return utc.isoformat()[:keep] + ("" if keep == 17 else "Z")  # minute "…T01:00:", or "…T01:00:00Z"


def readings(raws: list[Any], ctx: AdaptContext) -> list[Fast | None]:
    """Each reading taken by the fast path, or None where the codec must decide."""
    found: list[tuple[re.Match[str], _Shape] | None] = []
    shape: _Shape | None = None
    compiled = 0
    for raw in raws:
        m = shape.pattern.fullmatch(raw) if shape is not None and type(raw) is str else None
        if m is None and type(raw) is str and (g := _PACKET.fullmatch(raw)) is not None:
            items = _ITEMS.findall(g[9])
            # a bound on the patterns one batch compiles (those met before are found either way)
            shape = _shape(g[3] is not None, g[7] is not None, items, compile=compiled < _SHAPES_PER_BATCH)
            compiled += 1
            m = shape.pattern.fullmatch(raw) if shape is not None else None
        found.append((m, shape) if m is not None and shape is not None else None)
    crcs = iter(crc16_many([f[0][2].encode("ascii") for f in found if f is not None]))
    clock = _Clock(ctx)
    return [None if f is None else _one(f[0], f[1], next(crcs), clock) for f in found]


def reading(raw: str, ctx: AdaptContext) -> Fast | None:
    """One reading alone (a single ``env.reading``), or None where the codec must decide."""
    global _recent
    recent = _recent
    for shape in recent:
        if (m := shape.pattern.fullmatch(raw)) is not None:
            return _one(m, shape, crc16(m[2].encode("ascii")), _Clock(ctx))
    g = _PACKET.fullmatch(raw)
    if g is None:
        return None
    items = _ITEMS.findall(g[9])
    qn, flag = g[3] is not None, g[7] is not None
    found = _shape(qn, flag, items, compile=False)
    if found is None:
        key = _key(qn, flag, items)
        if key is None:
            return None  # an item repeated: the codec names it
        seen = _sightings.get(key, 0) + 1
        if seen < _SINGLE_COMPILE:
            if len(_sightings) >= 1024:
                _sightings.clear()
            _sightings[key] = seen
            return None
        _sightings.pop(key, None)
        found = _shape(qn, flag, items, compile=True)
    m = found.pattern.fullmatch(raw) if found is not None else None
    if found is None or m is None:
        return None
    _recent = (found, *(s for s in recent if s is not found))[:_RECENT]
    return _one(m, found, crc16(m[2].encode("ascii")), _Clock(ctx))


def _one(m: re.Match[str], shape: _Shape, crc: int, clock: _Clock) -> Fast | None:
    length, data, qn, st, cn, _, flag, stamp = m.group(1, 2, 3, 4, 5, 6, 7, 8)
    if int(length) != len(data) or int(m[m.lastindex or 0], 16) != crc or cn not in READING_COMMANDS:
        return None
    if shape.family != CODE_FAMILY.get(st, shape.family):
        return None  # a code outside the station class's family: the codec names it
    if flag is not None and (int(flag) > 255 or int(flag) & FLAG_SUBPACKET):
        return None
    if not shape.fields:
        return None  # no measured value: the codec says so
    if cn not in shape.fits:
        return None  # a pollutant lacks its CN's primary value, or statistics carry Rtd: the codec refuses it
    if qn is not None and qn[:14] != stamp:
        try:
            _local(qn[:14])
        except ValueError:
            return None
    at = clock.utc(stamp)
    if at is None:
        return None
    return Fast(m, shape, (shape.template % m.group(*shape.order)).encode("ascii"), at)
