"""HJ 212-2017 packet codec: ``##`` + 4-digit length + data segment + CRC16 (4 hex) + CR LF.

The data segment is ``QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&``. Inside ``CP``, items are
``key=value``; items of one pollutant are joined by ``,`` and groups by ``;``. A key is either a plain name
(``DataTime``) or ``<code>-<field>`` (``w01018-Rtd``). Only printable ASCII is accepted: the standard's
length counts bytes and the devices we target send ASCII.

CRC: the standard's appendix algorithm (``crc = 0xFFFF; crc = (crc >> 8) ^ byte; 8 × shift with 0xA001``).
It is *not* CRC-16/MODBUS (which XORs the byte into the low half); it reproduces the standard's example
``##0101QN=20160801085857223;…;CP=&&RtdInterval=30&&1C80``, which MODBUS does not (it gives ``0759``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

import numpy as np

from adapters.errors import Hj212CrcMismatch, Hj212LengthMismatch, Hj212Malformed

__all__ = [
    "DATA_FLAGS",
    "NUMERIC_FIELDS",
    "Packet",
    "check_item",
    "crc16",
    "crc16_many",
    "encode_packet",
    "local_time",
    "parse_cp",
    "parse_data_segment",
    "parse_packet",
]

# Data flags of a monitored value (HJ 212-2017 table 6).
DATA_FLAGS = MappingProxyType(
    {
        "N": "normal",
        "F": "stopped",
        "M": "maintenance",
        "S": "set manually",
        "D": "fault",
        "C": "calibration",
        "T": "over range",
        "B": "communication fault",
    }
)
NUMERIC_FIELDS = frozenset({"Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "ZsAvg", "ZsMin", "ZsMax"})

_HEADER_RULES = {
    "QN": re.compile(r"[0-9]{17}"),  # yyyyMMddHHmmssZZZ
    "ST": re.compile(r"[0-9]{2}"),
    "CN": re.compile(r"[0-9]{4}"),
    "PW": re.compile(r"[A-Za-z0-9]{1,32}"),
    "MN": re.compile(r"[A-Za-z0-9]{1,24}"),
    "Flag": re.compile(r"[0-9]{1,3}"),
    "PNUM": re.compile(r"[0-9]{1,4}"),
    "PNO": re.compile(r"[0-9]{1,4}"),
}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")
_CODE = re.compile(r"[A-Za-z0-9]{1,16}")
_VALUE = re.compile(r"[\x21-\x7e]{0,64}")  # printable ASCII; separators are refused separately
_SEPARATORS = frozenset(";,=&")
# Field names the standard gives a meaning and a spelling: another case ("rtd") would escape their checks.
_STANDARD_NAMES = {n.casefold(): n for n in (*NUMERIC_FIELDS, "Flag", "DataTime", "SampleTime")}
_NUMBER = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,10})?")
_TIMESTAMP = re.compile(r"[0-9]{14}")
FLAG_SUBPACKET = 0b10  # Flag bit D: the packet is one of PNUM parts


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC16 of HJ 212-2017 appendix A over ``data`` (the data segment)."""
    # The appendix's loop is crc = (crc >> 8) ^ byte, then 8 shift/xor steps. That value fits in a byte
    # and the steps are linear, so each byte is one lookup of the 8 steps applied to it.
    crc = 0xFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


# crc16_many: the state between bytes is the CRC's high byte (h = T[h ^ byte] >> 8), a linear map of the
# previous one. Segments are right-aligned behind zero bytes and run from h = 0 (zeros keep it 0); each then
# owes the difference its true start (0xFF) would have made, _START[n] for a segment of n bytes.
_T16 = np.array(_CRC_TABLE, dtype=np.uint16)
_HIGH = (_T16 >> 8).astype(np.uint8)
_WIDE = 1024  # longer segments go one by one: the grid is width × count bytes
_START: list[int] = []


def _start_term(n: int) -> int:
    while len(_START) <= n:
        k = len(_START)  # T[H^(k-1)(0xFF)]: the start's share in the CRC of k bytes
        h = 0xFF
        for _ in range(k - 1):
            h = _CRC_TABLE[h] >> 8
        _START.append(_CRC_TABLE[h] if k else 0xFFFF)
    return _START[n]


def crc16_many(segments: list[bytes]) -> list[int]:
    """``crc16`` of each segment, the short ones in one vectorised pass (a batch's packets: ~1 µs each
    where the byte loop takes ~30)."""
    out = [0] * len(segments)
    short = [i for i, seg in enumerate(segments) if 0 < len(seg) <= _WIDE]
    for i in set(range(len(segments))) - set(short):
        out[i] = crc16(segments[i])
    if not short:
        return out
    parts = [segments[i] for i in short]
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    width = int(lengths.max())
    padded = b"".join(p.rjust(width, b"\0") for p in parts)
    # row r: byte r of every segment (right-aligned), contiguous for the loop below
    grid = np.ascontiguousarray(np.frombuffer(padded, dtype=np.uint8).reshape(len(parts), width).T)
    h = np.zeros(len(parts), dtype=np.uint8)
    for row in grid[:-1]:
        h = _HIGH.take(h ^ row)
    _start_term(width)
    start = np.array(_START, dtype=np.uint16)[lengths]
    crcs = _T16.take(h ^ grid[-1]) ^ start
    for i, crc in zip(short, crcs.tolist(), strict=True):
        out[i] = crc
    return out


def local_time(value: str) -> datetime:
    """A ``YYYYMMDDhhmmss`` timestamp as a naive datetime (station local time); ValueError if invalid."""
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError(value)
    v = value
    return datetime(int(v[:4]), int(v[4:6]), int(v[6:8]), int(v[8:10]), int(v[10:12]), int(v[12:14]))


@dataclass(frozen=True, kw_only=True)
class Packet:
    """A parsed packet. Values stay as the packet's text, so re-encoding reproduces them exactly."""

    st: str
    cn: str
    pw: str
    mn: str
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    cp: dict[str, str] = field(default_factory=dict)  # plain CP items: DataTime, RtdInterval, …
    pollutants: dict[str, dict[str, str]] = field(default_factory=dict)  # code → field → value
    raw: str | None = None  # the packet text this was parsed from, if any

    @property
    def data_time(self) -> str | None:
        """The ``DataTime`` item (``YYYYMMDDhhmmss``, station local time), if present."""
        return self.cp.get("DataTime")

    def data_segment(self) -> str:
        """The data segment in the standard's field order."""
        head: list[tuple[str, object]] = [
            ("QN", self.qn),
            ("ST", self.st),
            ("CN", self.cn),
            ("PW", self.pw),
            ("MN", self.mn),
            ("Flag", self.flag),
            ("PNUM", self.pnum),
            ("PNO", self.pno),
        ]
        groups = [f"{k}={v}" for k, v in self.cp.items()]
        groups += [
            ",".join(f"{code}-{f}={v}" for f, v in fields.items()) for code, fields in self.pollutants.items()
        ]
        head_text = "".join(f"{k}={v};" for k, v in head if v is not None)
        return f"{head_text}CP=&&{';'.join(groups)}&&"

    def encode(self) -> str:
        """The full packet text, with length, CRC and CR LF."""
        data = self.data_segment()
        return f"##{len(data):04d}{data}{crc16(data.encode('ascii')):04X}\r\n"


def encode_packet(
    *,
    st: str,
    cn: str,
    pw: str,
    mn: str,
    data_time: str | None = None,
    pollutants: dict[str, dict[str, str]] | None = None,
    qn: str | None = None,
    flag: int | None = None,
    cp: dict[str, str] | None = None,
) -> str:
    """Build a valid packet (checked by parsing it back), e.g. for samples and the SDK."""
    items = dict(cp or {})
    if data_time is not None:
        items = {"DataTime": data_time, **items}
    packet = Packet(st=st, cn=cn, pw=pw, mn=mn, qn=qn, flag=flag, cp=items, pollutants=dict(pollutants or {}))
    data = packet.data_segment()
    if not data.isascii():
        raise _fail("packet fields must be printable ASCII", "data")
    text = packet.encode()
    parse_packet(text)  # the same checks as for received packets: never emit what we would refuse
    return text


def _fail(message: str, part: str, **extra: Any) -> Hj212Malformed:
    return Hj212Malformed(message, details={"part": part, **extra})


def parse_packet(packet: bytes | str) -> Packet:
    """Parse and check a packet; raise HJ212_LENGTH_MISMATCH / HJ212_CRC_MISMATCH / HJ212_MALFORMED."""
    if isinstance(packet, bytes | bytearray | memoryview):
        try:
            text = bytes(packet).decode("ascii")
        except UnicodeDecodeError as exc:
            raise _fail("packet is not ASCII", "packet", offset=exc.start) from exc
    elif isinstance(packet, str):
        text = packet
        if not text.isascii():
            raise _fail("packet is not ASCII", "packet")
    else:
        raise _fail("packet must be bytes or text", "packet")
    if not text.startswith("##"):
        raise _fail("packet must start with ##", "header")
    declared_text = text[2:6]
    if len(declared_text) != 4 or not declared_text.isdigit():
        raise _fail("packet length must be 4 decimal digits", "length", value=declared_text)
    if not text.endswith("\r\n"):
        raise _fail("packet must end with CR LF", "trailer")
    body = text[6:-2]
    if len(body) < 4:
        raise _fail("packet too short for a CRC", "crc")
    data, crc_text = body[:-4], body[-4:]
    declared = int(declared_text)
    if declared != len(data):
        raise Hj212LengthMismatch(
            f"declared data length {declared}, actual {len(data)}",
            details={"part": "length", "declared": declared, "actual": len(data)},
        )
    if not re.fullmatch(r"[0-9A-Fa-f]{4}", crc_text):
        raise _fail("CRC must be 4 hex digits", "crc", value=crc_text)
    expected = crc16(data.encode("ascii"))
    if int(crc_text, 16) != expected:
        raise Hj212CrcMismatch(
            f"CRC {crc_text.upper()} does not match data segment ({expected:04X})",
            details={"part": "crc", "declared": crc_text.upper(), "computed": f"{expected:04X}"},
        )
    return replace(parse_data_segment(data), raw=text)


def parse_data_segment(data: str) -> Packet:
    """Parse a data segment (no length, CRC or trailer)."""
    if not data.isascii() or not data.isprintable():
        raise _fail("data segment must be printable ASCII", "data")
    head, sep, rest = data.partition("CP=&&")
    if not sep:
        raise _fail("data segment has no CP=&&", "CP")
    if not rest.endswith("&&"):
        raise _fail("CP must end with && at the end of the data segment", "CP")
    header = _parse_header(head)
    cp, pollutants = parse_cp(rest[:-2])
    return Packet(
        st=header["ST"],
        cn=header["CN"],
        pw=header["PW"],
        mn=header["MN"],
        qn=header.get("QN"),
        flag=int(header["Flag"]) if "Flag" in header else None,
        pnum=int(header["PNUM"]) if "PNUM" in header else None,
        pno=int(header["PNO"]) if "PNO" in header else None,
        cp=cp,
        pollutants=pollutants,
    )


def _parse_header(head: str) -> dict[str, str]:
    if head and not head.endswith(";"):
        raise _fail("header fields must end with ;", "header")
    fields: dict[str, str] = {}
    for item in head.split(";")[:-1]:
        key, eq, value = item.partition("=")
        if not eq or key not in _HEADER_RULES:
            raise _fail(f"unknown header field {key!r}", key or "header")
        if key in fields:
            raise _fail(f"header field {key} repeated", key)
        if not _HEADER_RULES[key].fullmatch(value):
            raise _fail(f"header field {key} malformed", key, value=value)
        fields[key] = value
    for key in ("ST", "CN", "PW", "MN"):
        if key not in fields:
            raise _fail(f"header field {key} missing", key)
    if "QN" in fields:
        _check_timestamp(fields["QN"][:14], "QN")
    flag = int(fields.get("Flag", "0"))
    if flag > 255:
        raise _fail("Flag must fit in a byte", "Flag", value=fields["Flag"])
    if flag & FLAG_SUBPACKET:
        if "PNUM" not in fields or "PNO" not in fields:
            raise _fail("a subpacket (Flag bit D) needs PNUM and PNO", "PNUM")
        if not 1 <= int(fields["PNO"]) <= int(fields["PNUM"]):
            raise _fail("PNO must be within 1..PNUM", "PNO", value=fields["PNO"])
    elif "PNUM" in fields or "PNO" in fields:
        raise _fail("PNUM/PNO only with Flag bit D", "PNUM")
    return fields


def _check_timestamp(value: str, part: str) -> None:
    if not _TIMESTAMP.fullmatch(value):
        raise _fail(f"{part} must be YYYYMMDDhhmmss", part, value=value)
    try:
        local_time(value)
    except ValueError as exc:
        raise _fail(f"{part} is not a valid date-time", part, value=value) from exc


def check_item(key: str, value: str) -> tuple[str | None, str]:
    """Check one CP item; return (pollutant code or None, field name). Shared with the JSON form."""
    if not _VALUE.fullmatch(value) or _SEPARATORS.intersection(value):
        raise _fail(f"value of {key} malformed", key, value=value[:64])
    code, dash, name = key.rpartition("-")
    if not dash:
        code, name = "", key
    if dash and not _CODE.fullmatch(code):
        raise _fail(f"pollutant code in {key!r} malformed", key[:64])
    if not _NAME.fullmatch(name):
        raise _fail(f"field name in {key!r} malformed", key[:64])
    standard = _STANDARD_NAMES.get(name.casefold())
    if standard is not None and standard != name:
        raise _fail(f"field name {name!r} is written {standard!r} (HJ 212-2017)", key[:64])
    if name in NUMERIC_FIELDS and not _NUMBER.fullmatch(value):
        raise _fail(f"{key} must be a decimal number", key, value=value)
    if name == "Flag" and value not in DATA_FLAGS:
        raise _fail(f"{key} is not a data flag ({''.join(DATA_FLAGS)})", key, value=value)
    if name in ("DataTime", "SampleTime"):
        _check_timestamp(value, key)
    return (code if dash else None), name


def parse_cp(body: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Parse the inside of ``CP=&&…&&`` into plain items and per-pollutant fields."""
    cp: dict[str, str] = {}
    pollutants: dict[str, dict[str, str]] = {}
    if body == "":
        return cp, pollutants
    for group in body.split(";"):
        for item in group.split(","):
            key, eq, value = item.partition("=")
            if not eq:
                raise _fail(f"CP item {item[:64]!r} is not key=value", "CP")
            code, name = check_item(key, value)
            if code is None:
                if key in cp:
                    raise _fail(f"CP item {key} repeated", key)
                cp[key] = value
            else:
                fields = pollutants.setdefault(code, {})
                if name in fields:
                    raise _fail(f"CP item {key} repeated", key)
                fields[name] = value
    return cp, pollutants
