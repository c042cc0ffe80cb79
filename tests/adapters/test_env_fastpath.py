"""The fast path (``adapters/env/fastpath.py``) against the HJ 212 codec (``EnvAdapter``), for a batch's
readings and for single ones (``env.reading`` as the gateway adapts it, ``EnvWorkflow.adapt``): wherever it
takes a reading, the codec takes it too, with the same canonical bytes and facts; wherever the codec
refuses one, the fast path leaves it to the codec (which names the error). Its vectorised CRC against the
byte loop."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import hj212
from adapters.abc import AdaptContext
from adapters.env import fastpath
from adapters.env.payload import EnvAdapter
from adapters.env.workflow import EnvWorkflow
from provenance.errors import ProvenanceError
from tests.kit.gateway import hj212_series

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "hj212"
NOW = datetime(2026, 11, 26, tzinfo=UTC)
CTX = AdaptContext(now=NOW)
_CODEC = EnvAdapter()
_WORKFLOW = EnvWorkflow()


def _codec(raw: str, ctx: AdaptContext = CTX, adapter: Any = _CODEC) -> Any:
    """A reading's verdict by ``adapter`` (the codec, or the gateway's ``EnvWorkflow``): adapted, or why."""
    try:
        return adapter.adapt("env.reading", raw.encode("utf-8"), context=ctx)
    except ProvenanceError as exc:
        return exc


def _agree(raws: list[str], ctx: AdaptContext = CTX) -> int:
    """Every reading: the fast path's verdict is the codec's (or none); the number it took."""
    taken = 0
    for raw, fast in zip(raws, fastpath.readings(raws, ctx), strict=True):
        slow = _codec(raw, ctx)
        if fast is None:
            continue
        assert not isinstance(slow, ProvenanceError), (raw, slow)
        assert fast.canonical == slow.canonical, raw
        assert orjson.dumps(fast.facts()) == orjson.dumps(slow.facts), raw
        taken += 1
    return taken


def _agree_single(raws: list[str], ctx: AdaptContext = CTX) -> int:
    """Each reading alone, as the gateway adapts an ``env.reading``, gets the codec's verdict: its error
    (code and details), or its bytes, digest, subject and facts (their members' order too: a single
    reading's facts are stored). Each is read until its shape is compiled; the number the fast path took."""
    taken = 0
    for raw in raws:
        for _ in range(fastpath._SINGLE_COMPILE + 1):
            fast = fastpath.reading(raw, ctx)
            got, slow = _codec(raw, ctx, _WORKFLOW), _codec(raw, ctx)
            if isinstance(slow, ProvenanceError):
                assert fast is None, raw
                assert isinstance(got, ProvenanceError) and (got.code, got.details) == (
                    slow.code,
                    slow.details,
                )
            else:
                assert not isinstance(got, ProvenanceError), (raw, got)
                assert (got.canonical, got.digest, got.subject) == (slow.canonical, slow.digest, slow.subject)
                assert orjson.dumps(got.facts) == orjson.dumps(slow.facts), raw
        taken += fast is not None
    return taken


def _packet(data: str) -> str:
    return f"##{len(data):04d}{data}{hj212.crc16(data.encode('ascii')):04X}\r\n"


SERIES = hj212_series("33010020261125AQ0001", NOW - timedelta(days=1), 5)


def test_samples_and_series_are_taken_as_the_codec_reads_them() -> None:
    valid = [p.read_bytes().decode("ascii") for p in sorted(ASSETS.glob("*.txt")) if "-" in p.stem]
    assert _agree(valid) >= 4  # the four golden samples (real-time air and water, hourly water, minute air)
    assert _agree(SERIES) == len(SERIES)
    assert _agree_single(valid) >= 4
    assert _agree_single(SERIES) == len(SERIES)


TAKEN = [
    # no QN, no Flag; a negative value; items of one pollutant across groups
    "ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Avg=-1.5,a21026-Flag=N&&",
    "QN=20261125090000001;ST=22;CN=2061;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Avg=600"
    ";a21026-Flag=D;a34004-Avg=1&&",
    # surface water (ST 21) and a noise station (ST 23: held to no code family)
    "ST=21;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;w01001-Avg=14;w01009-Avg=0,w01009-Flag=N&&",
    "ST=23;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;LA-Avg=55.1&&",
    # statistics: a flow total with only Cou beside a measured Avg (HJ 212-2017's hourly water upload)
    "ST=32;CN=2061;PW=1;MN=A1;CP=&&DataTime=20261125090000;w00000-Cou=45.2;w01018-Avg=28,w01018-Cou=1.3&&",
]
# A pollutant without its CN's primary value, or Rtd in statistics (ninth attack, 2): the codec refuses it.
STRAY = [
    "ST=32;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;w22002-Rtd=50&&",  # statistics, Rtd only
    "ST=32;CN=2061;PW=1;MN=A1;CP=&&DataTime=20261125090000;w01018-Avg=1;w25023-Rtd=9&&",
    "ST=32;CN=2031;PW=1;MN=A1;CP=&&DataTime=20261125090000;w22002-Max=50,w22002-Min=1&&",  # no Avg
    "ST=32;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;w22002-ZsAvg=50&&",
    "ST=32;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;w22002-Avg=50,w22002-Rtd=1&&",  # Rtd beside
    "ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;w01018-Avg=500&&",  # real-time, no Rtd
    "ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;w01001-Rtd=7;w01018-Max=500&&",
]


# A code outside the station class's family (sixth attack, 6): left to the codec, which refuses it.
FOREIGN = [
    "ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;w01018-Rtd=1;a21026-Rtd=9999&&",
    "ST=22;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Rtd=1;w01018-Rtd=99999&&",
    "ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;W01018-Rtd=99999&&",  # upper case
    "ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;011-Rtd=99999&&",  # HJ 212-2005's COD
    "ST=21;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;w01018-Rtd=1;a34004-Flag=N&&",
]


@pytest.mark.parametrize(
    "data",
    [
        *TAKEN,
        # left to the codec, each refused by it
        "ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Avg=1,a21026-Avg=2&&",  # repeated
        "ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261131090000;a21026-Avg=1&&",  # 31 November
        "ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20271125090000;a21026-Avg=1&&",  # future
        "ST=22;CN=9014;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Avg=1&&",  # not a data upload
        "ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Flag=N&&",  # no measured value
        "ST=22;CN=2051;PW=1;MN=A1;Flag=258;CP=&&DataTime=20261125090000;a21026-Avg=1&&",  # Flag > 255
        "ST=22;CN=2051;PW=1;MN=A1;Flag=2;CP=&&DataTime=20261125090000;a21026-Avg=1&&",  # bit D, no PNUM
        "QN=20261131090000001;ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Avg=1&&",
        "ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090060;w01018-Rtd=1&&",  # a leap second
        "QN=20261125090060001;ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;w01018-Rtd=1&&",
        *STRAY,
        *FOREIGN,
        # left to the codec, accepted by it
        "ST=22;CN=2051;PW=1;MN=A1;Flag=7;PNUM=2;PNO=1;CP=&&DataTime=20261125090000;a21026-Avg=1&&",
        "ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Avg=1,a21026-EFlag=x&&",
        "MN=A1;ST=22;CN=2051;PW=1;CP=&&DataTime=20261125090000;a21026-Avg=1&&",  # another header order
    ],
)
def test_each_shape_agrees_with_the_codec(data: str) -> None:
    raw = _packet(data)
    taken = _agree([raw, *SERIES[:1], raw])  # a shape met again after another one
    assert taken == (3 if data in TAKEN else 1)
    assert _agree_single([raw]) == (1 if data in TAKEN else 0)
    if data in FOREIGN:
        assert _codec(raw).code == "POLLUTANT_CLASS_MISMATCH"
    if data in STRAY:
        assert _codec(raw).code == "ENV_RULE_VIOLATION"


def test_a_shape_of_one_family_is_left_to_the_codec_under_another_class() -> None:
    # One shape (the same items), two classes: taken as ST 31 (air source), refused as ST 32 (water source).
    data = "ST=%s;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Rtd=9999;a34004-Rtd=9999&&"
    air, water = _packet(data % "31"), _packet(data % "32")
    fast = fastpath.readings([air, water, air], CTX)
    assert fast[0] is not None and fast[1] is None and fast[2] is not None
    exc = _codec(water)
    assert isinstance(exc, ProvenanceError) and exc.code == "POLLUTANT_CLASS_MISMATCH"
    assert exc.details == {"field": "pollutants", "code": "a21026", "st": "32", "family": "w"}


@pytest.mark.parametrize("offset", [timedelta(hours=5, minutes=45), timedelta(hours=8, seconds=30)])
def test_other_utc_offsets_agree(offset: timedelta) -> None:
    # whole minutes: converted minute by minute; otherwise reading by reading
    ctx = AdaptContext(now=NOW, hj212_utc_offset=offset)
    assert _agree(SERIES, ctx) == len(SERIES)
    assert _agree_single(SERIES, ctx) == len(SERIES)


def test_crc_and_length_faults_are_left_to_the_codec() -> None:
    good = SERIES[0]
    bad_crc = good[:-6] + ("0000" if good[-6:-2] != "0000" else "0001") + "\r\n"
    bad_len = good[:2] + f"{int(good[2:6]) + 1:04d}" + good[6:]
    out = fastpath.readings([good, bad_crc, bad_len], CTX)
    assert out[0] is not None and out[1] is None and out[2] is None
    assert isinstance(_codec(bad_crc), ProvenanceError) and _codec(bad_crc).code == "HJ212_CRC_MISMATCH"
    assert _codec(bad_len).code == "HJ212_LENGTH_MISMATCH"  # type: ignore[union-attr]
    assert _agree_single([good, bad_crc, bad_len]) == 1


def test_a_single_readings_shape_is_compiled_once_the_codec_read_it_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compile costs ~10 readings' codec work: readings of ever new shapes cost at most about twice the
    codec's; a fleet's shape is compiled after a few readings, and a packet with a repeated item never."""
    monkeypatch.setattr(fastpath, "_shapes", {})
    monkeypatch.setattr(fastpath, "_sightings", {})
    monkeypatch.setattr(fastpath, "_recent", ())
    raw = _packet("ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Avg=1;a34004-Avg=2&&")
    taken = [fastpath.reading(raw, CTX) is not None for _ in range(fastpath._SINGLE_COMPILE + 2)]
    assert taken == [False] * (fastpath._SINGLE_COMPILE - 1) + [True] * 3
    other = _packet("ST=22;CN=2051;PW=1;MN=A2;CP=&&DataTime=20261125090001;a21026-Avg=3;a34004-Avg=4&&")
    assert fastpath.reading(other, CTX) is not None  # the same shape, other values: the recent pattern
    repeated = _packet("ST=22;CN=2051;PW=1;MN=A1;CP=&&DataTime=20261125090000;a21026-Avg=1,a21026-Avg=2&&")
    assert not any(fastpath.reading(repeated, CTX) for _ in range(2 * fastpath._SINGLE_COMPILE))
    assert _codec(repeated, CTX, _WORKFLOW).code == "HJ212_MALFORMED"
    assert len(fastpath._shapes) == 1 and len(fastpath._recent) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, len(SERIES) - 1),
    st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from(list("0123456789;,=&-.NDFaZzRrCP#\r\n "))), max_size=3
    ),
    st.booleans(),
)
def test_mutated_packets_never_pass_where_the_codec_refuses(
    which: int, edits: list[tuple[int, str]], fix_crc: bool
) -> None:
    raw = SERIES[which]
    for at, ch in edits:
        at %= len(raw)
        raw = raw[:at] + ch + raw[at + 1 :]
    if fix_crc and raw.startswith("##") and raw.endswith("\r\n") and len(raw) > 12:
        raw = _packet(raw[6:-6])  # a consistent length and CRC: the grammar and rules decide
    _agree([raw])
    _agree_single([raw])


def test_the_vectorised_crc_is_the_byte_loop() -> None:
    rng = random.Random(17)
    segments = [rng.randbytes(rng.randrange(0, 1100)) for _ in range(300)] + [b"x" * 3000, b""]
    assert hj212.crc16_many(segments) == [hj212.crc16(s) for s in segments]
    example = (
        "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
        "CP=&&RtdInterval=30&&"
    )
    assert hj212.crc16_many([example.encode()]) == [0x1C80]  # the standard's example (hj212 module doc)


@pytest.mark.parametrize(
    ("bad", "code", "index"),
    [
        # a lone surrogate ("\ud800" in the JSON): the parsed object's canonical JSON refuses it whole
        ("\ud800", "PAYLOAD_INVALID", (2, None)),
        ("中" + SERIES[2], "PAYLOAD_INVALID", (2, 2)),  # non-ASCII text before a packet
        (SERIES[2].replace("a21026", "a２1026"), "HJ212_MALFORMED", (2, 2)),  # a non-ASCII digit inside
        (7, "PAYLOAD_INVALID", (2, 2)),
    ],
)
def test_a_batch_reads_alike_as_bytes_and_as_the_gateways_parsed_object(
    bad: Any, code: str, index: int
) -> None:
    """The gateway hands the batch adapter the parsed body (its ASCII readings taken as they are, not
    through canonical JSON); the SDK hands it bytes: one verdict, the reading's index named, no crash."""
    from adapters import adapt
    from tests.kit.gateway import env_batch

    start = NOW - timedelta(days=1)
    good = hj212_series("33010020261125AQ0001", start, 5)
    payload = {**env_batch(good, "33010020261125AQ0001", start, start + timedelta(seconds=10))}
    assert (
        adapt("env.batch", payload, CTX).digest
        == adapt("env.batch", json.dumps(payload).encode(), CTX).digest
    )
    payload["readings"] = [*good[:2], bad, *good[3:]]
    for form, at in zip((json.dumps(payload).encode(), payload), index, strict=True):
        with pytest.raises(ProvenanceError) as err:
            adapt("env.batch", form, CTX)
        assert (err.value.code, err.value.details.get("index")) == (code, at)
