"""The kind table, dispatch, subject check, and the golden samples of every domain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rfc8785

from adapters import ADAPTERS, KINDS, AdaptContext, RecordAdapter, adapt, adapter_for
from adapters.errors import KindUnknown, SubjectMismatch
from provenance.crypto.sm3 import sm3_hex
from tests.kit.adapter_samples import ASSETS, PSEUDONYM_KEY, expected, good_samples, kind_of


def test_every_adapter_kind_is_in_the_table_and_only_there() -> None:
    for kind, adapter in ADAPTERS.items():
        assert isinstance(adapter, RecordAdapter)
        assert kind in adapter.kinds
    for adapter in ADAPTERS.values():
        assert set(adapter.kinds) <= set(KINDS)
    assert {"rx.issue", "rx.dispense", "rx.revoke", "share.consent", "env.reading", "party.record"} <= set(
        KINDS
    )


@pytest.mark.parametrize("kind", ["rx.unknown", "", "RX.ISSUE", "env"])
def test_unknown_kind(kind: str) -> None:
    with pytest.raises(KindUnknown) as e:
        adapt(kind, b"{}")
    assert e.value.code == "KIND_UNKNOWN"
    assert e.value.details["field"] == "kind"
    with pytest.raises(KindUnknown):
        adapter_for(kind)


def test_declared_subject_must_match() -> None:
    raw = (ASSETS / "party" / "dues.json").read_bytes()
    assert (
        adapt("party.record", raw, AdaptContext(subject="branch:zb-hz-shj-003")).subject
        == "branch:zb-hz-shj-003"
    )
    with pytest.raises(SubjectMismatch) as e:
        adapt("party.record", raw, AdaptContext(subject="branch:other"))
    assert e.value.code == "SUBJECT_MISMATCH"
    assert e.value.details == {
        "field": "subject",
        "declared": "branch:other",
        "payload": "branch:zb-hz-shj-003",
    }


@pytest.mark.parametrize("path", good_samples(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_sample(path: Path) -> None:
    pinned = expected(path.parent.name)[path.name]
    keyed = AdaptContext(pseudonym_key=PSEUDONYM_KEY)
    a = adapt(kind_of(path), path.read_bytes(), keyed)
    assert (a.kind, a.subject, a.digest) == (pinned["kind"], pinned["subject"], pinned["digest"])
    assert a.facts == pinned["facts"]
    assert a.digest == sm3_hex(a.canonical)
    # The canonical form is a fixed point: adapting it again changes nothing.
    again = adapt(a.kind, a.canonical, keyed)
    assert (again.canonical, again.facts) == (a.canonical, a.facts)
    # Facts are plain JSON (the gateway stores and forwards them).
    assert json.loads(json.dumps(a.facts)) == a.facts
    if path.suffix == ".json":
        # JSON kinds keep the client's document: its own RFC 8785 digest is the payload digest.
        assert a.canonical == rfc8785.dumps(json.loads(path.read_bytes()))
        assert adapt(a.kind, json.loads(path.read_bytes())).canonical == a.canonical
