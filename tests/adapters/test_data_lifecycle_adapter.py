"""The payload rules of a dataset's life (``data.*``), each with its code, without the gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters import AdaptContext, adapt
from adapters.abc import State
from adapters.errors import PayloadInvalid
from adapters.sharing.domain import dataset_key, dataset_state
from tests.kit.data_life import collected, countersigned, derived, now, opened, settled, stored

CTX = AdaptContext()


def _code(kind: str, payload: dict[str, Any]) -> tuple[str, Any]:
    with pytest.raises(PayloadInvalid) as caught:
        adapt(kind, payload, context=CTX)
    return caught.value.code, (caught.value.details or {}).get("field")


def test_valid_payloads_name_the_dataset_subject() -> None:
    start, end = now(-timedelta(hours=1)), now(-timedelta(minutes=1))
    for kind, payload in (
        ("data.collected", collected("d1")),
        ("data.stored", stored("d1", "core")),
        ("data.opened", opened("d1", public=False, to=["data-user"])),
        ("data.derived", derived("d1", [{"dataset": "d0"}])),  # the output is its subject
        ("data.settled", {**settled("R1", start, end, 3), "dataset": "d1", "settled_at": end}),
        ("data.countersigned", {**countersigned({"settlement_id": "S1"}, "a" * 64), "dataset": "d1"}),
    ):
        assert adapt(kind, payload, context=CTX).subject == "dataset:d1", kind


def test_lifecycle_payload_rules() -> None:
    start, end = now(-timedelta(hours=1)), now(-timedelta(minutes=1))
    assert _code("data.opened", opened("d1", public=True, to=["x"])) == ("SHARE_RULE_VIOLATION", "to")
    assert _code("data.opened", opened("d1", public=False)) == ("SHARE_RULE_VIOLATION", "to")
    assert _code("data.stored", stored("d1", "secret"))[0] == "PAYLOAD_INVALID"  # not a classification
    twice = [{"dataset": "d1"}, {"dataset": "d1", "request_id": "R1"}]
    assert _code("data.derived", derived("d2", twice)) == ("SHARE_RULE_VIOLATION", "inputs")
    assert _code("data.derived", derived("d2", [{"dataset": "d2"}])) == ("SHARE_RULE_VIOLATION", "dataset")
    assert _code("data.derived", derived("d2", []))[0] == "PAYLOAD_INVALID"  # at least one input
    backwards = settled("R1", end, start, 0)
    assert _code("data.settled", backwards) == ("SHARE_RULE_VIOLATION", "period_end")
    early = {**settled("R1", start, end, 1), "settled_at": start}
    assert _code("data.settled", early) == ("SHARE_RULE_VIOLATION", "settled_at")
    wrong = settled("R1", start, end, 3, amount=449)
    assert _code("data.settled", wrong)[0] == "SETTLEMENT_AMOUNT_MISMATCH"
    assert _code("data.settled", {**settled("R1", start, end, 1), "unit_price": -1})[0] == "PAYLOAD_INVALID"
    future = {**collected("d1"), "collected_at": now(timedelta(hours=1))}
    with pytest.raises(PayloadInvalid) as caught:  # dated past the gateway's clock (plus the skew)
        adapt("data.collected", future, context=AdaptContext(now=datetime.now(UTC)))
    assert (caught.value.code, (caught.value.details or {}).get("field")) == (
        "DATE_IN_FUTURE",
        "collected_at",
    )


def test_dataset_ids_compared_without_case() -> None:
    """The twelfth attack (A): a dataset id in another case is the same dataset. Its state key is one (the
    rules then find the one it names: DATASET_EXISTS, through the gateway in tests/security); an input named
    twice in two cases is named twice; a record naming it in another case than made sees no state."""
    assert dataset_key("Demo-Census") == dataset_key("demo-census") == dataset_key("DEMO-CENSUS")
    twice = derived("out", [{"dataset": "demo-census"}, {"dataset": "Demo-Census"}])
    assert _code("data.derived", twice) == ("SHARE_RULE_VIOLATION", "inputs")
    made = State("collected", {"dataset": "demo-census", "owner": "data-owner"})
    states = {dataset_key("demo-census"): made}
    assert dataset_state(states, "demo-census") is made
    assert dataset_state(states, "Demo-Census") is None
    legacy = State("collected", {"owner": "data-owner"})  # kept before spellings were: the record's
    assert dataset_state({dataset_key("x"): legacy}, "X") is legacy
