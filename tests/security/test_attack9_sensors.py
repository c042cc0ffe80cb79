"""The ninth outside attack's finding 2: a minute, hour or day reading (CN 2051, 2061, 2031) carrying only
``Rtd`` (no ``Avg``) was accepted and held to no limit, single and in a batch. HJ 212-2017 lays those
uploads out as statistics, ``Avg`` with ``Min``, ``Max`` and ``Cou``, and no ``Rtd``. The attacker's inputs
(kit9 env_st32.py, env_batch2.py, env_packets.py) replayed through the real HTTP API, signed with real SM2
keys, on the gateway suite's network; alerts read back from the station's alerts API; the batch fast path
held to the codec's verdict on the same packets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters import hj212
from adapters.abc import AdaptContext
from adapters.env import fastpath
from adapters.env.payload import EnvAdapter
from provenance.errors import ProvenanceError
from tests.kit.gateway import Harness, env_batch
from tests.security.test_attack6_water import _local, _packet, _Station


def _stats(mn: str, cn: str, at: datetime, pollutants: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {"mn": mn, "st": "32", "cn": cn, "data_time": _local(at), "pollutants": pollutants}


def _stats_packet(mn: str, cn: str, at: datetime, pollutants: dict[str, dict[str, str]]) -> str:
    return hj212.encode_packet(
        st="32", cn=cn, pw="123456", mn=mn, data_time=_local(at), pollutants=pollutants
    )


def test_f9_2_a_statistics_reading_is_held_by_its_avg_and_carries_no_rtd(harness: Harness) -> None:
    source = _Station(harness, harness.client("station-1"))
    mn = source.mn
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    # env_st32.py "oils Rtd CN2051 no Avg" (oils at 5x their 10 mg/L), and the same as hour and day uploads:
    # refused, naming the pollutant and the Avg it lacks; nothing kept.
    for i, cn in enumerate(("2051", "2061", "2031")):
        bare = _stats(mn, cn, t0 + timedelta(seconds=i), {"w22002": {"Rtd": "50"}})
        details = source.refused("env.reading", bare, "ENV_RULE_VIOLATION")
        assert details == {"field": "w22002-Avg", "code": "w22002", "cn": cn}
    # env_packets.py "pkt 2051 Max only": a statistic without its Avg is held to nothing either.
    at = t0 + timedelta(seconds=5)
    details = source.refused(
        "env.reading", _stats(mn, "2051", at, {"w22002": {"Max": "50"}}), "ENV_RULE_VIOLATION"
    )
    assert details == {"field": "w22002-Avg", "code": "w22002", "cn": "2051"}
    # env_st32.py "oils Avg CN2051 Rtd low": a real-time Rtd beside the Avg is no field of a statistics
    # upload (a second value a reader could take for the one the limit reads): refused, naming it.
    beside = _stats(mn, "2051", at, {"w22002": {"Avg": "50", "Rtd": "1"}})
    details = source.refused("env.reading", beside, "ENV_RULE_VIOLATION")
    assert details == {"field": "w22002-Rtd", "code": "w22002", "cn": "2051"}
    # env_batch2.py: the batch of one JSON minute reading, oils Rtd 50 and nitrobenzenes Rtd 9, refused
    # at its index; and the same as a packet behind a good one (the fast path leaves it to the codec).
    rd = _stats(mn, "2051", at, {"w22002": {"Rtd": "50"}, "w25023": {"Rtd": "9"}})
    details = source.refused(
        "env.batch", env_batch([rd], mn, at, at + timedelta(seconds=1)), "ENV_RULE_VIOLATION"
    )
    assert details["index"] == 0 and details["field"] == "w22002-Avg", details
    good = _packet(mn, "32", at, {"w01018": "50"})
    stray = _stats_packet(mn, "2061", at + timedelta(seconds=1), {"w25023": {"Rtd": "9", "Flag": "N"}})
    batch = env_batch([good, stray], mn, at, at + timedelta(seconds=2))
    details = source.refused("env.batch", batch, "ENV_RULE_VIOLATION")
    assert details["index"] == 1 and details["field"] == "w25023-Avg", details
    # What the standard lays out is accepted and held by its Avg: oils at 50 mg/L raise an exceedance; a
    # flow total carrying only Cou (w00000, m3) is no concentration, kept and compared with nothing.
    oil = source.accepted(
        "env.reading", _stats(mn, "2051", t0 + timedelta(seconds=10), {"w22002": {"Avg": "50"}})
    )
    hour = {
        "w00000": {"Cou": "45.2"},
        "w25023": {"Avg": "9", "Min": "8", "Max": "10", "Cou": "0.4", "Flag": "N"},
    }
    nitro = source.accepted(
        "env.batch",
        env_batch(
            [_stats_packet(mn, "2061", t0 + timedelta(seconds=21), hour)],
            mn,
            t0 + timedelta(seconds=20),
            t0 + timedelta(seconds=22),
        ),
    )
    assert source.exceedances()[:2] == [
        (oil, 0, "w22002", 50.0, 10.0, "max"),
        (nitro, 0, "w25023", 9.0, 2.0, "max"),
    ]


NOW = datetime(2026, 11, 26, tzinfo=UTC)


def test_f9_2_the_fast_path_leaves_a_stray_statistics_packet_to_the_codec() -> None:
    """Packets of the shapes above (a lone Rtd, a lone Max, Rtd beside Avg, under CN 2051/2061/2031): the
    fast path takes none, the codec refuses each naming the field; the standard's layout it takes."""
    ctx, codec = AdaptContext(now=NOW), EnvAdapter()
    at = NOW - timedelta(hours=1)
    stray = {
        "w22002-Avg": ("2051", {"w22002": {"Rtd": "50"}}),
        "w25023-Avg": ("2031", {"w01018": {"Avg": "1"}, "w25023": {"Rtd": "9", "Flag": "N"}}),
        "w22002-Rtd": ("2061", {"w22002": {"Avg": "50", "Rtd": "1", "Flag": "N"}}),
    }
    for field, (cn, pollutants) in stray.items():
        raw = _stats_packet("A1", cn, at, pollutants)
        assert fastpath.readings([raw], ctx) == [None], field
        try:
            codec.adapt("env.reading", raw.encode("ascii"), context=ctx)
        except ProvenanceError as exc:
            assert exc.code == "ENV_RULE_VIOLATION" and exc.details == {
                "field": field,
                "code": field.split("-")[0],
                "cn": cn,
            }, exc.details
        else:
            raise AssertionError(f"{field} accepted")
    fine = _stats_packet("A1", "2061", at, {"w00000": {"Cou": "45.2"}, "w22002": {"Avg": "50", "Cou": "1"}})
    taken = fastpath.readings([fine], ctx)[0]
    assert taken is not None and taken.facts()["pollutants"] == {"w22002": 50.0}
    assert codec.adapt("env.reading", fine.encode("ascii"), context=ctx).facts["pollutants"] == {
        "w22002": 50.0
    }
