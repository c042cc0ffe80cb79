"""Hypothesis against the write path: honest records of every domain, mutated (envelope fields and payload
leaves given trailing newlines, other scripts' digits, control and format characters, edge numbers), signed
as mutated with the organisation's real key and submitted over HTTP. Each answer is a 2xx or a 4xx with a
code, never a 5xx; and at the end every record the run got a 202 for keeps the invariant
(``tests.kit.gateway.check_accepted``: anchored, its bundle verifies, every read 2xx), the property that issue
#23's finding 4 broke (accepted records whose bundles failed the schema, or whose reads answered 500).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters import adapt
from provenance.errors import ProvenanceError
from provenance.records import canonical_bytes, digest_of
from provenance.timestamps import utc_now
from tests.kit.gateway import (
    Harness,
    accepted_since,
    check_accepted,
    error_code,
    hj212_packets,
    party_meeting,
    rx_issue,
    share_request,
)
from tests.security.fuzzing import fuzz_settings

EXAMPLES = 60
ODD = [
    "\n",
    "\r\n",
    " ",
    "\t",
    "\u2028",
    "\u0085",
    "\x00",
    "\x7f",
    "\u0663",
    "\ufeff",
    "\ud7ff",
    "Ω",
    "/",
    "%0a",
]
NUMBERS = [0, -1, 2**53 - 1, 2**53, 1.5, -0.0, 1e16, 1e-7, 10**20]


def _reading() -> dict[str, Any]:
    doc: dict[str, Any] = adapt("env.reading", secrets.choice(hj212_packets(5)).encode()).document()
    return doc  # the normal form is the JSON form: its leaves are the fuzz's


BASES: dict[str, tuple[str, Callable[[], Any]]] = {
    "env.reading": ("station-1", _reading),
    "party.record": ("party-branch", lambda: party_meeting("zb-" + secrets.token_hex(3), "MTG-F1")),
    "rx.issue": ("hospital-1", lambda: rx_issue("RX" + secrets.token_hex(5).upper())),
    "share.request": ("data-user", lambda: share_request("REQ-" + secrets.token_hex(4), "data-user")),
}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path] if path else []


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@st.composite
def submissions(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(BASES)))
    org, build = BASES[kind]
    payload = build()
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(_leaves(payload)))
        old = _get(payload, path)
        if isinstance(old, str):
            new: Any = draw(
                st.sampled_from(
                    [old + draw(st.sampled_from(ODD)), draw(st.sampled_from(ODD)) + old, old.upper(), ""]
                )
            )
        else:
            new = draw(st.sampled_from(NUMBERS))
        _set(payload, path, new)
    try:
        subject, digest = adapt(kind, payload).subject, digest_of(payload)
    except ProvenanceError:  # a payload the adapter refuses: the gateway must refuse it too
        subject, digest = f"{kind.split('.')[0]}:fuzz", "0" * 64
    record: dict[str, Any] = {
        "version": 1,
        "kind": kind,
        "subject": subject,
        "org": org,
        "timestamp": utc_now(),
        "nonce": secrets.token_hex(16),
        "prev": None,
        "payload_digest": digest,
    }
    for field in draw(
        st.lists(st.sampled_from(["subject", "nonce", "timestamp", "prev", "org"]), max_size=1)
    ):
        odd = draw(st.sampled_from(ODD))
        record[field] = ("0" * 64 if field == "prev" else record[field]) + odd
    return org, record, payload


def test_mutated_submissions_get_4xx_codes_and_accepted_ones_verify(harness: Harness) -> None:
    started = time.time()
    statuses: dict[str, int] = {}

    @fuzz_settings(EXAMPLES)
    @given(submissions())
    def submit(case: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
        org, record, payload = case
        client = harness.client(org)
        signature = base64.b64encode(client.key.sign(canonical_bytes(record))).decode()
        r = client.post({"record": record, "signature": signature, "payload": payload})
        assert r.status_code < 500, (record, r.text)
        code = "accepted" if r.status_code in (200, 202) else error_code(r)
        statuses[code] = statuses.get(code, 0) + 1

    submit()
    print(f"\nanswers: {dict(sorted(statuses.items()))}")
    accepted = accepted_since(harness, started)
    assert len(accepted) == statuses.get("accepted", 0)
    assert accepted, "no mutation was accepted: the run checked nothing of the invariant"
    check_accepted(harness, accepted)
