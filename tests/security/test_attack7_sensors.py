"""The seventh outside attack's findings 4, 6 and 7 (F7-4, F7-6, F7-7): a gas asset changing class through a
case or punctuation variant of its id, a discharge's BOD5, petroleum and hexavalent chromium raising no
exceedance, and what a taken request id tells. The attacker's inputs (kit7 gas1.py G0 G1 G1b; env1.py E5,
env3.py F8 F9; data1.py) replayed through the
real HTTP API, signed with real SM2 keys, on the gateway suite's network; alarms and alerts read back from
their APIs."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from adapters.env.limits import GB8978_GRADE_1, Range
from adapters.gas.batch import SPEC
from gateway.models import Record, WorkflowState
from provenance.client import Client
from provenance.types import Role
from tests.gateway.test_sharing import _another_data_owner
from tests.kit import batch_flows as flows
from tests.kit.batches import count, submit_when_seen
from tests.kit.gas import gas_batch, register_logger
from tests.kit.gateway import Harness, check_accepted, env_batch, error_code, share_request
from tests.security.test_attack6_gas import _r
from tests.security.test_attack6_water import _packet, _reading, _Station

UTILITY = "gas-utility-2"


def test_f7_4_an_assets_id_variant_is_the_asset_and_a_loose_id_is_refused(harness: Harness) -> None:
    utility = harness.client(UTILITY)
    logger = register_logger(harness.network, UTILITY)
    refused = flows.refusals(harness, utility, SPEC)
    t0 = (datetime.now(UTC) - timedelta(minutes=50)).replace(microsecond=0)

    def minute(n: int) -> datetime:
        return t0 + timedelta(minutes=n)

    # G0: PIPE-0EC5 recorded as a pipeline (0.3 MPa, within its band).
    pipe = "PIPE-0EC5"
    g0 = gas_batch([_r(pipe, "pipeline", minute(0), pressure=(0.3, "MPa"))], logger, minute(0), minute(1))
    r = submit_when_seen(utility, "gas.batch", g0)
    assert r.status_code == 202, r.text
    ids = [r.json()["id"]]

    # G1: pipe-0EC5 as a source at 1.5 MPa (no alarm in the source band): the pipeline, in another case.
    # Its spelling with '_' likewise; the error names the reading as sent and the class recorded.
    for variant in ("pipe-0EC5", "Pipe_0ec5"):
        hop = gas_batch(
            [_r(variant, "source", minute(1), pressure=(1.5, "MPa"))], logger, minute(1), minute(2)
        )
        mismatch = {"index": 0, "asset": variant, "value": "source", "asset_class": "pipeline"}
        refused(hop, "ASSET_CLASS_MISMATCH", 409, **mismatch)
    # G1b: "PIPE-0EC5." (and other loose spellings of what reads as the same id): no asset id at all.
    for loose in ("PIPE-0EC5.", "PIPE-0EC5 ", "PIPE--0EC5", "PIPE.0EC5", "-PIPE-0EC5"):
        bad = gas_batch([_r(loose, "source", minute(1), pressure=(1.5, "MPa"))], logger, minute(1), minute(2))
        refused(bad, "GAS_ASSET_INVALID", 400, index=0, field="asset", value=loose)

    # The variant read as what it is, through the SDK: accepted, and its 1.5 MPa alarms in the pipeline's
    # band (over 0.4 MPa), named as sent; at the instant of another spelling's reading it repeats it.
    twice = [
        _r("pipe-0ec5", "pipeline", minute(1), pressure=(1.5, "MPa")),
        _r("PIPE_0EC5", "pipeline", minute(1), pressure=(0.3, "MPa")),
    ]
    refused(gas_batch(twice, logger, minute(1), minute(2)), "READING_DUPLICATE", 400, index=1, first=0)
    with Client(**flows.sdk_settings(harness, UTILITY)) as client:
        ids.append(
            client.submit_batch(twice[:1], logger=logger, period_start=minute(1), period_end=minute(2)).id
        )
    harness.wait_status(ids[-1], "anchored", timeout=60)
    alarms = flows.pages(utility, f"/api/v1/gas/loggers/{logger}/alarms")
    got = [(a["asset"], a["asset_class"], a["type"], a["value"], a["limit"]) for a in alarms]
    assert got == [("pipe-0ec5", "pipeline", "pressure_high", 1.5, 0.4)], got
    # The next batch still holds every spelling to the class first recorded.
    later = gas_batch(
        [_r("PIPE_0ec5", "meter", minute(3), pressure=(2, "kPa"))], logger, minute(2), minute(4)
    )
    refused(later, "ASSET_CLASS_MISMATCH", 409, asset="PIPE_0ec5", value="meter", asset_class="pipeline")
    check_accepted(harness, ids)


def test_f7_6_a_discharge_is_held_to_every_gb8978_grade_1_limit_hj212_names(harness: Harness) -> None:
    client = harness.client("station-1")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    source = _Station(harness, client)
    mn = source.mn
    # E5, F8, F9: BOD5 9999, petroleum 99999, hexavalent chromium 99999 (µg/L, its HJ 212 unit).
    e5 = source.accepted("env.reading", _reading(mn, "32", t0, {"w01017": "9999"}))
    f8 = source.accepted("env.reading", _reading(mn, "32", t0 + timedelta(seconds=1), {"w22001": "99999"}))
    f9 = source.accepted("env.reading", _reading(mn, "32", t0 + timedelta(seconds=2), {"w20117": "99999"}))
    # A batch: each code of the table at its limit (reading 0: no alert) and just over it (reading 1).
    maxima = {
        code: limit["hour"] for code, limit in GB8978_GRADE_1.items() if not isinstance(limit["hour"], Range)
    }
    assert {"w01017", "w22001", "w20117", "w23002", "w21016", "w20111"} <= set(maxima)
    start = t0 + timedelta(minutes=1)
    at_limit = {code: f"{v:g}" for code, v in maxima.items()}
    over = {code: f"{v * 1.01:g}" for code, v in maxima.items()}
    readings = [_packet(mn, "32", start, at_limit), _packet(mn, "32", start + timedelta(seconds=1), over)]
    batch = source.accepted("env.batch", env_batch(readings, mn, start, start + timedelta(seconds=2)))
    exceedances = source.exceedances()
    assert exceedances[:3] == [
        (e5, 0, "w01017", 9999.0, 20.0, "max"),
        (f8, 0, "w22001", 99999.0, 5.0, "max"),
        (f9, 0, "w20117", 99999.0, 500.0, "max"),
    ]
    assert sorted(exceedances[3:]) == sorted(
        (batch, 1, code, float(over[code]), limit, "max") for code, limit in maxima.items()
    )


def test_f7_7_a_taken_request_id_is_named_and_nothing_of_its_request(harness: Harness) -> None:
    """data1.py: a request id another data user took answers SHARE_REQUEST_EXISTS (ids are one namespace,
    the chain's key): the same answer as for one's own, naming only the id, in any case; nothing kept."""
    request_id = "REQ-" + secrets.token_hex(4).upper()
    user = harness.client("data-user")
    assert user.submit("share.request", share_request(request_id, "data-user")).status_code == 202
    other = _another_data_owner(harness, Role.DATA_USER)
    answers = []
    for who, rid in ((other, request_id), (other, request_id.lower()), (user, request_id.lower())):
        before = (count(harness, Record), count(harness, WorkflowState))
        r = who.submit("share.request", share_request(rid, who.org))
        assert (r.status_code, error_code(r)) == (409, "SHARE_REQUEST_EXISTS"), r.text
        assert (count(harness, Record), count(harness, WorkflowState)) == before
        answers.append(r.json()["error"]["details"])
    assert answers == [{"request_id": rid} for rid in (request_id, request_id.lower(), request_id.lower())]
