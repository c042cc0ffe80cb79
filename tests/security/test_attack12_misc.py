"""The twelfth outside attack's remaining findings replayed through the real gateway over HTTP with real SM2
keys: a dataset id taken again in another case (A), a resubmission answered as accepted for other bytes (B),
and the prescription check and bundle reads answering alike for an invisible and an unknown id (C)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from provenance.access_code import HEADER, AccessCode
from tests.gateway.test_data_lifecycle import _ok, _refused
from tests.gateway.test_lean_routes import _both
from tests.kit.data_life import collected, derived, fresh, stored
from tests.kit.gateway import Harness, consented, error_code, kit_code, new_rx_id, rx_issue


def test_a_dataset_id_in_another_case_is_the_same_dataset(harness: Harness) -> None:
    """A: data-user derived "Demo-Census" from data-owner's "demo-census" (under its consent) and the owner's
    lineage listed the look-alike. Dataset ids are compared without case, as request ids are: a new dataset
    whose id differs only by case from one kept here or registered on chain is DATASET_EXISTS (409), a record
    naming a dataset in another case than it was made in names none, and a read finds it in any case."""
    owner, user = harness.client("data-owner"), harness.client("data-user")
    dataset = fresh("census")
    harness.wait_chain(_ok(owner, "data.collected", collected(dataset)))  # registered: requests name it
    _ok(owner, "data.stored", stored(dataset, "important"))
    request_id, _, _ = consented(harness, dataset)
    covered = [{"dataset": dataset, "request_id": request_id}]
    look_alike = dataset.capitalize()
    _refused(user, "data.derived", derived(look_alike, covered), 409, "DATASET_EXISTS")  # the attacker's
    _refused(user, "data.derived", derived(dataset.upper(), covered), 409, "DATASET_EXISTS")
    _refused(user, "data.collected", collected(look_alike, owner="data-user"), 403, "ROLE_FORBIDDEN")
    _refused(owner, "data.collected", collected(dataset.upper()), 409, "DATASET_EXISTS")
    # The devnet's dataset, registered on chain only (no state here): its case variants are taken too.
    _refused(user, "data.derived", derived("Health-Stats", covered), 409, "DATASET_EXISTS")
    _refused(owner, "data.collected", collected("HEALTH-STATS"), 409, "DATASET_EXISTS")
    # Named in another case than it was made in: no such dataset (the chain keys it as spelled).
    _refused(owner, "data.stored", stored(look_alike, "core"), 404, "DATASET_UNKNOWN")
    other_case = [{"dataset": look_alike, "request_id": request_id}]
    _refused(user, "data.derived", derived(fresh("rates"), other_case), 404, "DERIVED_INPUT_UNKNOWN")
    out = fresh("rates")
    _ok(user, "data.derived", derived(out, covered))
    # Read in any case: the dataset as made, its one real descendant.
    for asked in (dataset, dataset.upper(), look_alike):
        r = owner.get(f"/api/v1/datasets/{asked}/lineage")
        assert r.status_code == 200, r.text
        assert r.json()["dataset"] == dataset
        assert [n["dataset"] for n in r.json()["descendants"]] == [out]
    r = user.get(f"/api/v1/datasets/{out.upper()}/lineage")
    assert (r.status_code, r.json()["dataset"]) == (200, out), r.text
    r = harness.client("station-1").get(f"/api/v1/datasets/{dataset.upper()}/lineage")
    assert (r.status_code, error_code(r)) == (404, "DATASET_UNKNOWN")


def _answers(harness: Harness, body: dict[str, Any]) -> list[tuple[int, str | None]]:
    """What the lean twin and the FastAPI route of POST /records, and a bulk request, answer ``body``."""
    auth = harness.client(str(body["record"]["org"])).headers
    lean, route = _both(harness, json.dumps(body).encode(), auth)
    bulk = harness.http.post("/api/v1/records:bulk", json={"records": [body]}, headers=auth)
    assert bulk.status_code == 200, bulk.text
    item = bulk.json()["items"][0]
    bulk_code = item["error"]["code"] if item.get("error") else None
    assert bulk_code is not None or item["existing"] is True, item
    assert all(r.status_code >= 400 or r.json()["existing"] is True for r in (lean, route))
    answers = [(r.status_code, error_code(r) if r.status_code >= 400 else None) for r in (lean, route)]
    return [*answers, (200 if bulk_code is None else 400, bulk_code)]


def test_b_resubmission_answered_existing_only_for_the_accepted_bytes(harness: Harness) -> None:
    """B: POST /records (single, lean and routed, and in /records:bulk) of an accepted record with signature
    "AAAA", another record's signature or another payload answered 200 existing:true. Now the resubmission
    is existing:true only when its signature verifies and its payload hashes to the envelope's digest; else
    the error a new record gets (SIGNATURE_INVALID, PAYLOAD_DIGEST_MISMATCH)."""
    h, rx_id = harness.client("hospital-1"), new_rx_id()
    body, other = h.body("rx.issue", rx_issue(rx_id)), h.body("rx.issue", rx_issue(new_rx_id()))
    assert h.post(body).status_code == 202
    assert h.post(other).status_code == 202
    assert _answers(harness, body) == [(200, None)] * 3  # the same bytes: existing, every path
    bad = [
        ({**body, "signature": "AAAA"}, "SIGNATURE_INVALID"),
        ({**body, "signature": other["signature"]}, "SIGNATURE_INVALID"),
        ({**body, "payload": rx_issue(rx_id, valid_for=timedelta(days=2))}, "PAYLOAD_DIGEST_MISMATCH"),
        ({**body, "payload": {"junk": True}}, "FHIR_INVALID"),  # what the adapter says of it
    ]
    for resent, code in bad:
        answers = _answers(harness, resent)
        assert [c for _, c in answers] == [code] * 3, (code, answers)
        assert all(status == 400 for status, _ in answers), answers
    # A signature of the same record made anew (SM2 is randomised) verifies: existing, not refused.
    again = h.body(
        "rx.issue", body["payload"], nonce=body["record"]["nonce"], timestamp=body["record"]["timestamp"]
    )
    assert again["record"] == body["record"] and again["signature"] != body["signature"]
    assert _answers(harness, again) == [(200, None)] * 3


def test_c_wrong_code_and_invisible_record_answer_as_unknown_ones(harness: Harness) -> None:
    """C: GET /rx/{id}/check as pharmacy-2 with a wrong Provenance-Access-Code answered 403
    ACCESS_CODE_INVALID ~0.6 ms later for an existing prescription than for a random id, and a bundle's 404
    ~0.4 ms later for a record there but not visible. The unknown id now makes the same look-ups and the
    code's keyed digest; what a test can hold is the behaviour: the same status and body either way (time:
    the residual)."""
    hospital, intruder = harness.client("hospital-2"), harness.client("pharmacy-2")
    rx, ghost = new_rx_id(), new_rx_id()
    r = hospital.submit("rx.issue", rx_issue(rx))
    assert r.status_code == 202, r.text
    issue_id = str(r.json()["id"])

    def check(rx_id: str, code: str | None) -> tuple[int, Any]:
        headers = {} if code is None else {HEADER: code}
        r = intruder.get(f"/api/v1/rx/{rx_id}/check", headers=headers)
        body = json.dumps(r.json()).replace(rx_id, "<id>")
        return r.status_code, json.loads(body)

    # The same work either way, as far as a test can see it: the SQL statements each request runs.
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name.startswith(("AnyIO worker", "gw-request")):  # a request's
            statements.append(statement)

    engine = harness.server.app.state.gateway.db.engine

    def queries(read: Callable[..., object], *args: object) -> list[str]:
        statements.clear()
        event.listen(engine, "before_cursor_execute", note)
        try:
            read(*args)
        finally:
            event.remove(engine, "before_cursor_execute", note)
        return list(statements)

    for presented in (str(AccessCode.new()), None):
        there_sql, absent_sql = (
            queries(check, rx, presented),
            queries(check, ghost, presented),
        )
        assert len(there_sql) == len(absent_sql) > 0, (presented, there_sql, absent_sql)
    for code, status, expected in (
        (str(AccessCode.new()), 403, "ACCESS_CODE_INVALID"),
        (None, 403, "ACCESS_CODE_REQUIRED"),
        ("not a code", 400, "ACCESS_CODE_MALFORMED"),
    ):
        there, absent = check(rx, code), check(ghost, code)
        assert there == absent, (there, absent)
        assert (there[0], there[1]["error"]["code"]) == (status, expected)
    assert check(rx, str(kit_code(rx)))[0] == 200  # the slip's code opens it

    def bundle(record_id: str) -> tuple[int, Any]:
        r = intruder.get(f"/api/v1/records/{record_id}/bundle")
        return r.status_code, json.loads(json.dumps(r.json()).replace(record_id, "<id>"))

    there, absent = bundle(issue_id), bundle("ab" * 32)
    there_sql, absent_sql = queries(bundle, issue_id), queries(bundle, "ab" * 32)
    assert len(there_sql) == len(absent_sql) > 0, (there_sql, absent_sql)
    assert there == absent and there[0] == 404 and there[1]["error"]["code"] == "RECORD_NOT_FOUND", there
    assert hospital.get(f"/api/v1/records/{issue_id}/bundle").status_code == 200
