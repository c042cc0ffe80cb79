"""Hypothesis on the parsers an attacker feeds: any input parses and round-trips, or raises our own error.

Already fuzzed elsewhere (not repeated here): Merkle proofs (tests/provenance/test_merkle.py), checkpoint
notes (tests/provenance/test_checkpoint.py), DER/PEM keys and signatures
(tests/provenance/crypto/test_crypto_der.py), HJ 212 and every adapter incl. FHIR
(tests/adapters/test_adapter_fuzz.py), the envelope fast path for valid envelopes
(tests/provenance/test_records.py). Added here: canonical JSON of arbitrary values against the RFC 8785
library, envelopes of arbitrary fields, evidence bundles (text and mutated golden bundles, through the
verifier), trust files.
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.errors import FormatError, ProvenanceError
from provenance.log.bundle import EvidenceBundle
from provenance.records import ENVELOPE_FIELDS, Envelope, SignedRecord, canonical_bytes, load_json
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.security.fuzzing import json_paths

BUNDLES = Path(__file__).resolve().parents[1] / "assets" / "bundles"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _scalars(*, non_finite: bool) -> st.SearchStrategy[Any]:
    """JSON scalars; with ``non_finite``, floats JSON has no form for too (NaN, ±inf)."""
    return (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**60), max_value=2**60)
        | st.floats(allow_nan=non_finite, allow_infinity=non_finite)
        | st.text(max_size=20)
    )


finite = _scalars(non_finite=False)
scalars = _scalars(non_finite=True)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
# What a JSON parser can produce (no NaN or Infinity): the bundle and trust file inputs.
json_documents = st.recursive(
    finite,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


def _has_float(v: Any) -> bool:
    if isinstance(v, float):
        return True
    if isinstance(v, list):
        return any(_has_float(x) for x in v)
    if isinstance(v, dict):
        return any(_has_float(x) for x in v.values())
    return False


# --- canonical JSON -------------------------------------------------------------------------------------


def _has_unsafe_float(v: Any) -> bool:
    if isinstance(v, float):
        return 2.0**53 <= abs(v) < 1e21  # printed without exponent, parsed back as an unsafe integer
    if isinstance(v, list):
        return any(_has_unsafe_float(x) for x in v)
    if isinstance(v, dict):
        return any(_has_unsafe_float(x) for x in v.values())
    return False


@FUZZ
@given(json_values)
def test_canonical_bytes_is_rfc8785_and_a_fixed_point(value: Any) -> None:
    try:
        out = canonical_bytes(value)
    except FormatError:
        return  # NaN, Infinity, integers beyond I-JSON, lone surrogates: refused with our error
    assert out == rfc8785.dumps(value)
    assert not _has_unsafe_float(value), "a float that cannot be read back must be refused"
    again = load_json(out)
    assert canonical_bytes(again) == out
    if not _has_float(value):
        assert again == value


@pytest.mark.parametrize("value", [2.0**53, 1e16, {"amount": -1e20}])
def test_canonical_bytes_refuses_what_it_cannot_read_back(value: Any) -> None:
    """A digest must be recomputable by a verifier from the JSON it is given: either the value is refused
    up front (FormatError), or its canonical bytes parse back to a value with the same canonical bytes."""
    try:
        out = canonical_bytes(value)
    except FormatError:
        return
    assert canonical_bytes(load_json(out)) == out


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_load_json_of_arbitrary_input(text: str | bytes) -> None:
    with contextlib.suppress(FormatError):
        load_json(text)


field_values = st.one_of(
    json_values,
    st.sampled_from(["rx.issue", "env.reading", "rx:RX1", "station:MN1", "hospital-1", 1]),
    st.from_regex(r"\A[0-9a-f]{64}\Z"),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z"),
)


@FUZZ
@given(st.dictionaries(st.sampled_from([*ENVELOPE_FIELDS, "extra"]), field_values, min_size=6))
def test_envelope_of_arbitrary_fields(data: dict[str, Any]) -> None:
    try:
        env = Envelope.from_dict(data)
    except ProvenanceError:
        return
    # Whatever validates canonicalises like the RFC 8785 library and parses back to itself.
    assert env.canonical() == rfc8785.dumps(env.to_dict())
    assert Envelope.from_dict(json.loads(env.canonical())) == env


@FUZZ
@given(st.dictionaries(st.sampled_from(["record", "signature", "x"]), json_values))
def test_signed_record_of_arbitrary_input(data: dict[str, Any]) -> None:
    with contextlib.suppress(ProvenanceError):
        SignedRecord.from_dict(data)


# --- evidence bundles -----------------------------------------------------------------------------------


def _golden() -> dict[str, Any]:
    out = {}
    for p in sorted(BUNDLES.glob("*.json")):
        if "trust" in p.name:
            continue
        try:
            doc = load_json(p.read_bytes())
        except FormatError:  # the raw-text attacks (a byte order mark, duplicate keys): no bundle to mutate
            continue
        if isinstance(doc, dict) and "record" in doc:
            out[p.name] = doc
    return out


GOLDEN = _golden()
TRUST = TrustStore.load(BUNDLES / "trust.json")


@st.composite
def mutated_bundles(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(GOLDEN[draw(st.sampled_from(sorted(GOLDEN)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in json_paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "flip"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "flip" and isinstance(parent[path[-1]], str) and parent[path[-1]]:
            s = parent[path[-1]]
            i = draw(st.integers(0, len(s) - 1))
            parent[path[-1]] = s[:i] + draw(st.characters()) + s[i + 1 :]
        else:
            parent[path[-1]] = draw(json_documents)
    return doc


def _check_bundle(doc: Any) -> None:
    try:
        bundle = EvidenceBundle.from_dict(doc)
    except ProvenanceError:
        return
    assert EvidenceBundle.from_dict(bundle.to_dict()) == bundle
    assert EvidenceBundle.from_json(bundle.to_json()) == bundle
    with contextlib.suppress(ProvenanceError):
        Verifier.offline(TRUST).verify(bundle)


@FUZZ
@given(mutated_bundles())
def test_mutated_golden_bundles_parse_round_trip_or_raise_ours(doc: Any) -> None:
    _check_bundle(doc)


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), json_documents.map(json.dumps)))
def test_bundle_from_arbitrary_text(text: str | bytes) -> None:
    try:
        bundle = EvidenceBundle.from_json(text)
    except ProvenanceError:
        return
    assert EvidenceBundle.from_json(bundle.to_json()) == bundle


def test_golden_bundles_round_trip() -> None:
    for doc in GOLDEN.values():
        _check_bundle(doc)


# --- trust files ----------------------------------------------------------------------------------------

TRUST_DOC = json.loads((BUNDLES / "trust.json").read_text("utf-8"))


@st.composite
def mutated_trust(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(TRUST_DOC)
    paths = [p for p in json_paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = draw(json_documents)
    return doc


@FUZZ
@given(mutated_trust())
def test_mutated_trust_file_parses_or_raises_ours(doc: Any) -> None:
    try:
        store = TrustStore.from_dict(doc)
    except ProvenanceError:
        return
    assert TrustStore.from_dict(store.to_dict()).to_dict() == store.to_dict()


@pytest.mark.parametrize("chain", [True, [""], "x", 5])
def test_trust_file_with_a_non_object_chain_entry(chain: Any) -> None:
    """A trust file is untrusted input to `provenance verify --trust`: any bad entry is TrustInvalid."""
    with pytest.raises(ProvenanceError):
        TrustStore.from_dict({**TRUST_DOC, "chain": chain})
