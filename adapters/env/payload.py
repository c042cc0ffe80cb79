"""Environmental monitoring: ``env.reading`` from an HJ 212-2017 packet or the same reading as JSON.

Both inputs normalise to one JSON form (see ``docs/design/adapters.md``): every field of the packet but its
password. ``PW`` authenticates the station to an HJ 212 data platform; here the SM2 signature and
EnvMonitoring's operator binding do that, and a password kept in a signed, logged payload could never be
taken back. So neither ``pw`` nor the packet's text (which holds it) is part of the normal form.

Reads (``READ_POLICY``): a station reads its own readings and batches; the environment bureau reads them all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC
from typing import Any

from pydantic import BaseModel

from adapters import hj212
from adapters._common import (
    STRICT,
    adapted,
    domain_policy,
    everything,
    load_json_object,
    rfc3339_utc,
    validate_model,
)
from adapters.abc import AdaptContext, AdaptedPayload, Payload
from adapters.env.domain import KINDS, READING
from adapters.env.errors import EnvRuleViolation
from adapters.env.stclass import check_codes
from adapters.errors import Hj212Malformed, PayloadInvalid

# Data-upload commands (HJ 212-2017 table 8): the only CNs that carry readings.
READING_COMMANDS = {"2011": "real-time", "2051": "minute", "2061": "hour", "2031": "day"}
# Real-time uploads report Rtd, the others Avg: the value the facts give for each pollutant.
_PRIMARY = {"2011": "Rtd"}
# HJ 212-2017 (6.6, appendix C): a real-time upload reports Rtd (ZsRtd); the minute, hour and day uploads
# (2051, 2061, 2031) report statistics, Avg with Min, Max (ZsAvg, ZsMin, ZsMax) and Cou, and no Rtd.
_REALTIME_ONLY = frozenset({"Rtd", "ZsRtd"})
_TOTAL = "Cou"  # a statistics upload's total (a flow's volume, a pollutant's mass): no concentration


def misfit(cn: str, fields: Mapping[str, Collection[str]]) -> tuple[str, str] | None:
    """The first (code, field) by which a data upload's pollutants stray from HJ 212-2017's layout: its
    primary value missing (a measured pollutant held to no limit), or a real-time field in a statistics
    upload; None if none does. A pollutant with only a Flag is a fault reported without a value; one with
    only Cou in a statistics upload is a total (a flow's volume), which no concentration limit reads."""
    primary = _PRIMARY.get(cn, "Avg")
    for code in sorted(fields):
        names = fields[code]
        measured = set(hj212.NUMERIC_FIELDS.intersection(names))
        if cn not in _PRIMARY:
            measured.discard(_TOTAL)
        if measured and primary not in names:
            return code, primary
        if cn not in _PRIMARY and (extra := sorted(_REALTIME_ONLY.intersection(names))):
            return code, extra[0]
    return None


class EnvReadingJson(BaseModel):
    """The JSON form of a reading (also the normalised form of a packet)."""

    model_config = STRICT

    mn: str
    st: str
    cn: str
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    data_time: str
    pollutants: dict[str, dict[str, str]]
    cp: dict[str, str] | None = None  # other plain CP items (DataTime lives in data_time)


# Members of the JSON form before the normal form left the password out: refused with a reason.
_CREDENTIALS = {
    "pw": "the station's HJ 212 password is a credential: it is not part of a reading (docs/formats.md)",
    "packet": "the packet's text holds the station's HJ 212 password: send the packet itself as the "
    "payload, or the JSON form without it (docs/formats.md)",
}
# The JSON form carries no password; its packet grammar check needs one.
_NO_PASSWORD = "0"  # noqa: S105  # a placeholder: no password is kept


def _normalise(p: hj212.Packet) -> dict[str, Any]:
    cp = {k: v for k, v in p.cp.items() if k != "DataTime"}
    out: dict[str, Any] = {
        "mn": p.mn,
        "st": p.st,
        "cn": p.cn,
        "qn": p.qn,
        "flag": p.flag,
        "pnum": p.pnum,
        "pno": p.pno,
        "data_time": p.data_time,
        "pollutants": p.pollutants,
        "cp": cp or None,
    }
    # Absent members are left out rather than null, so a JSON client that omits them gets the same bytes.
    return {k: v for k, v in out.items() if v is not None}


def _from_json(obj: Mapping[str, Any]) -> dict[str, Any]:
    for key, why in _CREDENTIALS.items():
        if key in obj:
            raise PayloadInvalid(why, details={"field": key})
    m = validate_model(EnvReadingJson, obj)
    normalised = _normalise(_packet_of(m))
    # Only the normal form is accepted, so the digest a client computes over its JSON is the one we compute.
    for key in sorted(set(normalised) | set(obj)):
        if key not in normalised or key not in obj or normalised[key] != obj[key]:
            raise PayloadInvalid(
                f"reading member {key} is not in normal form (omit nulls)", details={"field": key}
            )
    return normalised


def _packet_of(m: EnvReadingJson) -> hj212.Packet:
    if m.cp and "DataTime" in m.cp:
        raise PayloadInvalid("DataTime goes in data_time, not cp", details={"field": "cp.DataTime"})
    if any(not fields for fields in m.pollutants.values()):
        raise Hj212Malformed("a pollutant needs at least one field", details={"part": "pollutants"})
    packet = hj212.Packet(
        st=m.st,
        cn=m.cn,
        pw=_NO_PASSWORD,
        mn=m.mn,
        qn=m.qn,
        flag=m.flag,
        pnum=m.pnum,
        pno=m.pno,
        cp={"DataTime": m.data_time, **(m.cp or {})},
        pollutants=m.pollutants,
    )
    # The packet grammar is the one source of truth for what a reading may hold: the JSON form must
    # denote exactly the packet it encodes to (a value smuggling a ";" would parse back differently).
    if hj212.parse_data_segment(packet.data_segment()) != packet:
        raise Hj212Malformed("reading does not encode to an equivalent packet", details={"part": "data"})
    return packet


def _facts(n: Mapping[str, Any], context: AdaptContext) -> dict[str, Any]:
    cn = n["cn"]
    if cn not in READING_COMMANDS:
        raise EnvRuleViolation(f"CN={cn} is not a data upload", details={"field": "CN", "value": cn})
    if "data_time" not in n:
        raise EnvRuleViolation("a reading needs DataTime", details={"field": "DataTime"})
    pollutants: dict[str, dict[str, str]] = n["pollutants"]
    if not pollutants:
        raise EnvRuleViolation("a reading needs at least one pollutant", details={"field": "pollutants"})
    local = hj212.local_time(n["data_time"])  # checked by the codec already
    try:
        utc = (local - context.hj212_utc_offset).replace(tzinfo=UTC)
    except OverflowError as exc:
        raise EnvRuleViolation("DataTime out of range", details={"field": "DataTime"}) from exc
    if context.now is not None and utc > context.now + context.max_clock_skew:
        raise EnvRuleViolation(
            "reading is dated in the future", details={"field": "DataTime", "value": n["data_time"]}
        )
    if not any(hj212.NUMERIC_FIELDS & set(f) for f in pollutants.values()):
        raise EnvRuleViolation(
            "a reading needs at least one pollutant with a measured value (Rtd, Avg, Min, Max, Cou…)",
            details={"field": "pollutants"},
        )
    check_codes(n["st"], pollutants)  # of its class's medium: a code its limits could name
    primary = _PRIMARY.get(cn, "Avg")
    # The limits read each pollutant's primary value: one without it would be held to none (eighth and
    # ninth attacks); a statistics upload's Rtd would be a second value beside what the limit reads.
    if (stray := misfit(cn, pollutants)) is not None:
        code, field = stray
        interval = READING_COMMANDS[cn]
        kind = f"{'an' if interval == 'hour' else 'a'} {interval} upload (CN={cn})"
        raise EnvRuleViolation(
            f"{kind} reports each measured pollutant's {primary}: {code} has none"
            if field == primary
            else f"{kind} carries statistics, not the real-time {field}: {code} has one",
            details={"field": f"{code}-{field}", "code": code, "cn": cn},
        )
    # Decimal text checked by the codec (never NaN, Infinity or an exponent): finite floats.
    values = {code: float(f[primary]) for code, f in pollutants.items() if primary in f}
    flags = {code: f["Flag"] for code, f in pollutants.items() if "Flag" in f}
    return {
        "mn": n["mn"],
        "st": n["st"],
        "cn": cn,
        "interval": READING_COMMANDS[cn],
        "data_time": rfc3339_utc(utc),
        "pollutants": values,
        "flags": flags,
        "abnormal": sorted(code for code, flag in flags.items() if flag != "N"),
    }


READ_POLICY = domain_policy(KINDS, roles={"env_bureau": everything(KINDS)})


class EnvAdapter:
    """``env.reading``: HJ 212-2017 packet bytes (``##…``) or its JSON form; subject ``station:<MN>``."""

    kinds: tuple[str, ...] = (READING,)
    read_policy = READ_POLICY

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        """Parse, check and normalise one reading."""
        ctx = context or AdaptContext()
        if isinstance(payload, bytes | bytearray | memoryview) and bytes(payload[:2]) == b"##":
            normalised = _normalise(hj212.parse_packet(bytes(payload)))
        else:
            normalised = _from_json(load_json_object(payload))
        # One normal form whichever way the reading came: the facts are the normal form's.
        facts = _facts(normalised, ctx)
        return adapted(kind, f"station:{normalised['mn']}", normalised, facts)
