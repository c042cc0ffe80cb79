"""The SDK's operations (provenance.client.ops) driven step by step, as Client and AsyncClient drive them: the
request each step asks for, the answer or the error it gets back where it asked (tests/provenance/
test_client.py runs both clients against a real devnet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenance.client import AnchorTimeout, Client, GatewayError
from provenance.client.api import Request
from provenance.client.ops import Run, Sleep, wait_anchored
from provenance.log.bundle import EvidenceBundle

ANCHORED = json.loads((Path(__file__).resolve().parents[1] / "assets" / "bundles" / "valid.json").read_text())
CLIENT = Client(base_url="http://127.0.0.1:9")  # never sends: the test answers each step itself


def _pending() -> GatewayError:
    return GatewayError("NOT_YET_LOGGED", "no checkpoint covers it yet", status=409)


def test_wait_anchored_polls_through_not_yet_logged_until_the_bundle_carries_an_anchor() -> None:
    unanchored = {k: v for k, v in ANCHORED.items() if k != "anchor"}
    answers: list[Any] = [_pending(), unanchored, ANCHORED]
    run = Run(wait_anchored(CLIENT, "ab" * 32, timeout=60.0, interval=0.25))
    steps = []
    for step in run:
        steps.append(step)
        if isinstance(step, Request):
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                run.fail(answer)
            else:
                run.reply(answer)
    bundle_request = Request("GET", f"/api/v1/records/{'ab' * 32}/bundle", params={"payload": "true"})
    assert steps == [bundle_request, Sleep(0.25), bundle_request, Sleep(0.25), bundle_request]
    assert not answers
    assert isinstance(run.result, EvidenceBundle) and run.result.anchor is not None
    assert run.result == EvidenceBundle.from_dict(ANCHORED)


def test_an_error_the_operation_does_not_handle_ends_the_run_with_it() -> None:
    run = Run(wait_anchored(CLIENT, "cd" * 32))
    step = next(run)
    assert isinstance(step, Request)
    run.fail(GatewayError("RECORD_NOT_FOUND", "no such record", status=404))
    with pytest.raises(GatewayError) as raised:
        next(run)
    assert raised.value.code == "RECORD_NOT_FOUND" and raised.value.status == 404


def test_wait_anchored_gives_up_after_its_timeout() -> None:
    run = Run(wait_anchored(CLIENT, "ef" * 32, timeout=0.0))
    assert isinstance(next(run), Request)
    run.fail(_pending())
    with pytest.raises(AnchorTimeout, match=r"not anchored within 0\.0 s"):
        next(run)
