"""The sixth outside attack's finding 1 (F6-1): a GS1 code with FNC1 (GS) separators, replayed with the
attacker's inputs (kit6 gs.py, gs3.py, gs_dispense.py, gs_dispense2.py, misc.py) through the real HTTP API,
signed with real SM2 keys, on the gateway suite's network."""

from __future__ import annotations

import secrets

from tests.kit.gateway import Harness, refused
from tests.security.test_attack5_rx import _dispense, _dispensed, _gtin, _issue, _look_up

GS = "\x1d"


def test_f6_1_a_gs1_string_with_gs_that_reads_as_two_boxes_is_refused(harness: Harness) -> None:
    h = harness
    gtin, tag = _gtin(), "".join(secrets.choice("ABCDEFGHJK") for _ in range(4))  # no AI inside
    # gs.py, gs3.py, misc.py: a GS somewhere switched the ambiguity check off for the other segments.
    for scanned in (
        f"01{gtin}{GS}21K{tag}10B7",
        f"01{gtin}21K{tag}10B7{GS}17281231",
        f"01{gtin}21S{tag}10B7{GS}10B7",  # the batch both in the serial and as (10)
        f"]d2{GS}01{gtin}21S{tag}10B7",  # ]d2 + GS: a leading GS
        f"]d2{GS}01{gtin}17281231{GS}21K{tag}10B7",
    ):
        rx = _issue(h)
        details = refused(_dispense(h, rx, [scanned]), 400, "TRACE_CODE_AMBIGUOUS")
        assert details["field"] == "extension.0.valueString" and len(details["readings"]) == 2, scanned
        assert not _dispensed(h, rx)
        assert refused(_look_up(h, scanned), 400, "TRACE_CODE_AMBIGUOUS")["field"] == "code"

    # gs_dispense.py: one box listed twice in one dispense of 2 盒, once printed, once with a GS.
    rx = _issue(h, {"value": 2, "unit": "盒"})
    codes = [f"(01){gtin}(21)A{tag}(10)B7", f"01{gtin}{GS}21A{tag}10B7"]
    assert refused(_dispense(h, rx, codes), 400, "TRACE_CODE_AMBIGUOUS")["field"] == "extension.1.valueString"
    assert not _dispensed(h, rx)

    # gs_dispense2.py: the printed box dispensed, then again with a GS; also after ]d2 + GS with (17).
    for printed, again, scan in (
        (f"(01){gtin}(21)D{tag}(10)B7", f"01{gtin}{GS}21D{tag}10B7", f"]d201{gtin}21D{tag}{GS}10B7"),
        (
            f"(01){gtin}(17)281231(21)F{tag}(10)B7",
            f"]d2{GS}01{gtin}17281231{GS}21F{tag}10B7",
            f"]d201{gtin}1728123110B7{GS}21F{tag}",
        ),
    ):
        assert _dispense(h, _issue(h), [printed]).status_code == 202
        rx = _issue(h)
        refused(_dispense(h, rx, [again]), 400, "TRACE_CODE_AMBIGUOUS")
        assert not _dispensed(h, rx)
        # Its scan with a GS after each variable-length value not at the end: the box handed over.
        assert _look_up(h, scan).json()["identity"] == printed.split("(10)")[0].replace("(17)281231", "")
        refused(_dispense(h, _issue(h), [scan]), 409, "TRACE_CODE_REUSED")

    # misc.py: the expiry read as part of the serial; printed, the box is expired.
    rx = _issue(h)
    refused(_dispense(h, rx, [f"(01){gtin}(21)E{tag}(17)200101"]), 400, "TRACE_CODE_EXPIRED")
    details = refused(_dispense(h, rx, [f"01{gtin}{GS}21E{tag}17200101"]), 400, "TRACE_CODE_AMBIGUOUS")
    assert f"(01){gtin}(17)200101(21)E{tag}" in details["readings"]
    assert not _dispensed(h, rx)
