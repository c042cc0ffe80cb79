"""The eighth outside attack's residuals of the seventh's finding 6 and a leap second: a discharge's
animal and vegetable oils and nitrobenzenes raising no exceedance, a real-time reading carrying only
``Avg`` held to no limit, and ``DataTime`` at second 60. The attacker's inputs (kit8 st32.py, st32b.py,
alerts*.py) replayed through the real HTTP API, signed with real SM2 keys, on the gateway suite's network;
alerts read back from the station's alerts API; the batch fast path held to the codec's verdict on the
same packets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters import hj212
from adapters.abc import AdaptContext
from adapters.env import fastpath
from adapters.env.payload import EnvAdapter
from provenance.errors import ProvenanceError
from tests.kit.gateway import Harness, env_batch
from tests.security.test_attack6_water import _local, _packet, _reading, _Station

BIG = "99999"  # st32.py's value


def test_f8_6_oils_and_nitrobenzenes_are_held_and_a_realtime_value_is_its_rtd(harness: Harness) -> None:
    source = _Station(harness, harness.client("station-1"))
    mn = source.mn
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    # st32.py animal_oil_w22002 (and st32b.py's w25 group: nitrobenzenes), as real-time Rtd 99999.
    oil = source.accepted("env.reading", _reading(mn, "32", t0, {"w22002": BIG}))
    nitro = source.accepted("env.reading", _reading(mn, "32", t0 + timedelta(seconds=1), {"w25023": BIG}))
    # st32.py COD_avg_high_rtd_low_2051: a minute upload is held by its Avg (its Rtd beside it is refused
    # since the ninth attack: test_attack9_sensors.py).
    minute = {"mn": mn, "st": "32", "cn": "2051", "data_time": _local(t0 + timedelta(seconds=2)),
              "pollutants": {"w01018": {"Avg": "500", "Max": "900"}}}  # fmt: skip
    cod = source.accepted("env.reading", minute)
    # st32.py COD_ZsRtd_only_withRtd_missing: a real-time upload (CN 2011) carrying only Avg was accepted
    # and compared with nothing. Refused, naming the pollutant and the Rtd it lacks; nothing kept.
    at = t0 + timedelta(seconds=3)
    bare = {
        "mn": mn,
        "st": "32",
        "cn": "2011",
        "data_time": _local(at),
        "pollutants": {"w01018": {"Avg": "500"}},
    }
    details = source.refused("env.reading", bare, "ENV_RULE_VIOLATION")
    assert details == {"field": "w01018-Rtd", "code": "w01018", "cn": "2011"}
    # The same as a packet in a batch (the fast path leaves it to the codec, which refuses it); a
    # pollutant with Rtd beside it does not carry it.
    mixed = hj212.encode_packet(
        st="32", cn="2011", pw="123456", mn=mn, data_time=_local(at),
        pollutants={"w01001": {"Rtd": "7", "Flag": "N"}, "w01018": {"Avg": "500", "Flag": "N"}},
    )  # fmt: skip
    good = _packet(mn, "32", at + timedelta(seconds=1), {"w01018": "50"})
    batch = env_batch([good, mixed], mn, at, at + timedelta(seconds=2))
    details = source.refused("env.batch", batch, "ENV_RULE_VIOLATION")
    assert details["index"] == 1 and details["field"] == "w01018-Rtd", details
    # A flag alone (no measured value) is still a real-time item: a device fault reported without a value.
    flagged = _reading(mn, "32", at + timedelta(seconds=3), {"w01001": "7"})
    flagged["pollutants"]["w01018"] = {"Flag": "D"}
    source.accepted("env.reading", flagged)
    assert source.exceedances()[:3] == [
        (oil, 0, "w22002", 99999.0, 10.0, "max"),
        (nitro, 0, "w25023", 99999.0, 2.0, "max"),
        (cod, 0, "w01018", 500.0, 100.0, "max"),
    ]


NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _raw(data: str) -> str:
    """A packet around ``data``, its length and CRC right (the codec's encoder refuses what it holds)."""
    return f"##{len(data):04d}{data}{hj212.crc16(data.encode('ascii')):04X}\r\n"


def test_f8_leap_second_data_time_is_refused_by_the_codec_and_the_fast_path(harness: Harness) -> None:
    """A DataTime (or QN) at second 60 is no HJ 212 time (YYYYMMDDhhmmss, seconds 00-59): HJ212_MALFORMED
    naming the field, as a packet and as the JSON form, single and in a batch; the fast path never takes
    it (it leaves it to the codec, which refuses it)."""
    ctx, codec = AdaptContext(now=NOW), EnvAdapter()
    leap = "20261125235960"
    packets = {
        "DataTime": _raw(f"ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime={leap};w01018-Rtd=1,w01018-Flag=N&&"),
        "QN": _raw(f"QN={leap}000;ST=32;CN=2011;PW=1;MN=A1;CP=&&DataTime=20261125235959;w01018-Rtd=1&&"),
    }
    for part, raw in packets.items():
        assert fastpath.readings([raw], ctx) == [None], part
        try:
            codec.adapt("env.reading", raw.encode("ascii"), context=ctx)
        except ProvenanceError as exc:
            assert exc.code == "HJ212_MALFORMED" and exc.details.get("part") == part, exc.details
        else:
            raise AssertionError(f"{part} at second 60 accepted")
    # Through the gateway: the JSON form, the packet, and the packet in a batch.
    source = _Station(harness, harness.client("station-1"))
    mn = source.mn
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    local = _local(at)[:12] + "60"
    reading = {"mn": mn, "st": "32", "cn": "2011", "data_time": local, "pollutants": {"w01018": {"Rtd": "1"}}}
    assert source.refused("env.reading", reading, "HJ212_MALFORMED")["part"] == "DataTime"
    packet = _raw(f"ST=32;CN=2011;PW=123456;MN={mn};CP=&&DataTime={local};w01018-Rtd=1,w01018-Flag=N&&")
    good = _packet(mn, "32", at - timedelta(seconds=5), {"w01018": "50"})
    batch = env_batch([good, packet], mn, at - timedelta(seconds=5), at + timedelta(minutes=1))
    details = source.refused("env.batch", batch, "HJ212_MALFORMED")
    assert details["index"] == 1 and details["part"] == "DataTime", details
