"""The lean twins of `POST /api/v1/records`, `GET /api/v1/records/{id}/bundle` and
`GET /api/v1/subjects/{subject}/records` (``gateway.api.front``) answer as their documented FastAPI routes do:
each answer of the routes, error codes included, through the real server both ways; and the lean twins do
answer what they are meant to (not all handed on)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.routes.records import lean_bundle, lean_submit
from gateway.api.routes.subjects import lean_history
from gateway.core.db import Database
from gateway.core.security import mint_token
from gateway.models import Record, RecordPublic
from provenance.access_code import HEADER
from provenance.errors import ProvenanceError
from tests.kit.gateway import (
    Harness,
    error_code,
    hj212_packets,
    kit_code,
    new_rx_id,
    rx_dispense,
    rx_issue,
    tamper_signature,
    workerless_gateway,
)

LEAN = "application/json"
ROUTE = "application/vnd.prov+json"  # JSON to FastAPI's route; the lean twin hands it on unread


def _post(harness: Harness, body: bytes, ctype: str, headers: dict[str, str]) -> httpx.Response:
    return harness.http.post("/api/v1/records", content=body, headers={"content-type": ctype, **headers})


def _both(harness: Harness, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
    """The same request answered by the lean twin and by the FastAPI route."""
    return _post(harness, body, LEAN, headers), _post(harness, body, ROUTE, headers)


def _same_error(lean: httpx.Response, route: httpx.Response, status: int, code: str) -> None:
    assert (lean.status_code, error_code(lean)) == (status, code), lean.text
    assert (route.status_code, route.json()) == (lean.status_code, lean.json())


def _signed(harness: Harness, org: str = "hospital-1") -> dict[str, Any]:
    return harness.client(org).body("rx.issue", rx_issue(new_rx_id()))


def _raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_submission_answers_and_error_codes_agree(harness: Harness) -> None:
    auth = harness.client("hospital-1").headers
    # Accepted (202) either way, the same answer; a repeat is 200 ``existing`` either way.
    a, b = _signed(harness), _signed(harness)
    first_a, first_b = _post(harness, _raw(a), LEAN, auth), _post(harness, _raw(b), ROUTE, auth)
    assert first_a.status_code == first_b.status_code == 202, (first_a.text, first_b.text)
    assert first_a.headers["content-type"] == first_b.headers["content-type"] == "application/json"
    assert set(first_a.json()) == set(first_b.json()) == {"id", "status", "existing", "receipt"}
    again_a, again_b = _post(harness, _raw(a), ROUTE, auth), _post(harness, _raw(b), LEAN, auth)
    assert again_a.status_code == again_b.status_code == 200
    for again, first in ((again_a, first_a), (again_b, first_b)):
        # The same receipt text, signed anew (an SM2 signature is randomised): all but the signature line.
        signed_text = again.json().pop("receipt").rsplit("\n— ", 1)[0]
        assert signed_text == first.json()["receipt"].rsplit("\n— ", 1)[0]
        assert {**again.json(), "receipt": None} == {**first.json(), "existing": True, "receipt": None}

    body = _raw(_signed(harness))  # never accepted: every request below is refused
    _same_error(*_both(harness, body, {}), 401, "AUTH_REQUIRED")
    _same_error(*_both(harness, body, {"Authorization": "Basic eDp5"}), 401, "AUTH_REQUIRED")
    _same_error(*_both(harness, body, {"Authorization": "Bearer spt_00.nope"}), 401, "TOKEN_INVALID")
    # Body checks before the token is looked at (the route parses first), then after it.
    duplicate = body[:-1] + b', "signature": "AAAA"}'
    _same_error(*_both(harness, duplicate, auth), 400, "JSON_DUPLICATE_KEY")
    _same_error(*_both(harness, body[:-1], {}), 400, "JSON_INVALID")
    _same_error(*_both(harness, b"[" * 200 + b"]" * 200, auth), 400, "BODY_TOO_DEEP")
    _same_error(*_both(harness, b" " * (harness.settings.max_body_bytes + 1), auth), 413, "BODY_TOO_LARGE")
    _same_error(*_both(harness, b"[]", {}), 401, "AUTH_REQUIRED")  # dependencies before the body model
    for invalid in (b"[]", _raw({k: v for k, v in json.loads(body).items() if k != "signature"})):
        _same_error(*_both(harness, invalid, auth), 422, "REQUEST_INVALID")
    _same_error(*_both(harness, body, {**auth, "Idempotency-Key": "k" * 201}), 422, "REQUEST_INVALID")
    _same_error(*_both(harness, body, {**auth, HEADER: "x" * 65}), 422, "REQUEST_INVALID")
    with_code = _raw({**json.loads(body), "access_code": "ABCD-EFGH"})
    _same_error(*_both(harness, with_code, {**auth, HEADER: "WXYZ-EFGH"}), 422, "REQUEST_INVALID")
    # The intake's refusals, through the one error handler either way.
    forged = _raw(tamper_signature(json.loads(body)))
    _same_error(*_both(harness, forged, auth), 400, "SIGNATURE_INVALID")
    _same_error(*_both(harness, body, harness.client("hospital-2").headers), 403, "ORG_MISMATCH")
    key = {**auth, "Idempotency-Key": new_rx_id()}
    assert _post(harness, _raw(_signed(harness)), LEAN, key).status_code == 202
    _same_error(*_both(harness, body, key), 409, "IDEMPOTENCY_KEY_REUSED")


def test_bundle_answers_and_error_codes_agree(harness: Harness) -> None:
    hospital = harness.client("hospital-1")
    r = hospital.post(_signed(harness))
    assert r.status_code == 202, r.text
    record_id = r.json()["id"]
    harness.wait_status(record_id, "sequenced")

    def both(path: str, query: str, headers: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
        # An extra parameter the route ignores: the lean twin takes only the plain forms, hands this on.
        route_query = f"?{query}&via=route" if query else "?via=route"
        lean = harness.http.get(f"{path}?{query}" if query else path, headers=headers)
        return lean, harness.http.get(path + route_query, headers=headers)

    path = f"/api/v1/records/{record_id}/bundle"

    def ready() -> bool:  # a signed checkpoint covers it (else NOT_YET_LOGGED, 409, either way)
        return hospital.get(path).status_code == 200

    harness.wait(ready, what="a checkpoint over the record")
    for query in ("", "payload=false", "payload=true"):
        lean, route = both(path, query, hospital.headers)
        assert lean.status_code == route.status_code == 200, (lean.text, route.text)
        assert lean.headers["content-type"] == route.headers["content-type"] == "application/json"
        assert lean.json() == route.json()
        assert ("payload" in lean.json()) is (query != "payload=false")
    _same_error(*both(path, "", {}), 401, "AUTH_REQUIRED")
    _same_error(*both(path, "payload=false", {"Authorization": "Bearer spt_00.nope"}), 401, "TOKEN_INVALID")
    missing = f"/api/v1/records/{'0x' + '00' * 32}/bundle"
    _same_error(*both(missing, "", hospital.headers), 404, "RECORD_NOT_FOUND")
    # Another hospital sees nothing of it: not found, alike.
    _same_error(*both(path, "payload=false", harness.client("hospital-2").headers), 404, "RECORD_NOT_FOUND")
    _same_error(*both(path, "", {**hospital.headers, HEADER: "not a code"}), 400, "ACCESS_CODE_MALFORMED")
    _same_error(*both(path, "", {**hospital.headers, HEADER: "x" * 65}), 422, "REQUEST_INVALID")


def test_lean_twins_answer_and_are_documented(harness: Harness) -> None:
    """The lean twins answer the plain forms themselves (a refusal raised, not handed on), hand the rest
    on; both routes stay in the OpenAPI document with their models; metrics label them by template."""
    app = harness.server.app
    auth = harness.client("hospital-1").headers

    def call(
        handler: Any,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        query: bytes = b"",
        **params: str,
    ) -> Response | None:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": query,
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "app": app,
        }
        result: Response | None = asyncio.run(handler(Request(scope), body, params))
        return result

    json_auth = {**auth, "content-type": LEAN}
    signed = _signed(harness)
    answered = call(lean_submit, "POST", "/api/v1/records", _raw(signed), json_auth)
    assert answered is not None and answered.status_code == 202
    refused = None
    try:
        call(lean_submit, "POST", "/api/v1/records", _raw(_signed(harness, "hospital-2")), json_auth)
    except ProvenanceError as exc:
        refused = exc.code
    assert refused == "ORG_MISMATCH"
    assert call(lean_submit, "POST", "/api/v1/records", b"[]", json_auth) is None  # the route's 422
    assert call(lean_submit, "POST", "/api/v1/records", b"{}", {**auth, "content-type": ROUTE}) is None
    record_id = json.loads(answered.body)["id"]
    harness.wait_status(record_id, "sequenced")
    bundle_path = f"/api/v1/records/{record_id}/bundle"
    harness.wait(lambda: harness.client("hospital-1").get(bundle_path).status_code == 200, what="bundle")
    got = call(lean_bundle, "GET", bundle_path, None, auth, record_id=record_id)
    assert got is not None and got.status_code == 200 and json.loads(got.body)["log"]["leaf_index"] >= 0
    subject = signed["record"]["subject"]
    history = f"/api/v1/subjects/{subject}/records"
    page = call(lean_history, "GET", history, None, auth, b"limit=1&after=0", subject=subject)
    assert (
        page is not None and page.status_code == 200 and json.loads(page.body)["items"][0]["id"] == record_id
    )
    for query in (b"limit=0", b"limit=007", b"limit=1&limit=1", b"limit=1&via=route", b"after=-1", b"after"):
        assert call(lean_history, "GET", history, None, auth, query, subject=subject) is None, query
    assert call(lean_history, "GET", history, None, {**auth, HEADER: "x" * 65}, subject=subject) is None
    refused = None
    try:
        call(lean_history, "GET", history, None, {HEADER: "not a code"}, subject=subject)
    except ProvenanceError as exc:
        refused = exc.code
    assert refused == "AUTH_REQUIRED"  # the token before the code, as the route's dependencies

    paths = harness.http.get("/openapi.json").json()["paths"]
    post = paths["/api/v1/records"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RecordSubmit")
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RecordAccepted"
    )
    assert {"401", "403", "409", "413", "422", "503"} <= set(post["responses"])
    assert "get" in paths["/api/v1/records/{record_id}/bundle"]
    get = paths["/api/v1/subjects/{subject}/records"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SubjectPage")
    bounds = {p["name"]: p["schema"] for p in get["parameters"] if p["in"] == "query"}
    assert (bounds["limit"]["minimum"], bounds["limit"]["maximum"], bounds["limit"]["default"]) == (
        1,
        500,
        100,
    )
    assert harness.client("hospital-1").get(history).status_code == 200  # through the server

    assert harness.client("hospital-1").post(_signed(harness)).status_code == 202  # through the server
    metrics = harness.client("regulator").get("/metrics").text
    lean_answers = (
        ("/api/v1/records", "POST", 202),  # the direct calls above are not counted: this one is
        ("/api/v1/records/{record_id}/bundle", "GET", 200),
        ("/api/v1/subjects/{subject}/records", "GET", 200),  # the FastAPI route's label, without ":path"
    )
    for template, method, status in lean_answers:
        assert f'prov_gw_requests_total{{method="{method}",route="{template}",status="{status}"}}' in metrics
    assert ":path}" not in metrics


# --- the subject history page (gateway/api/routes/subjects.py) ----------------------------------------


def _history_both(
    http: httpx.Client, path: str, query: str, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    """A history request as the lean twin takes it and as only the FastAPI route does (an extra parameter
    the route ignores); the path as written (percent-encoding and all)."""
    route_query = f"{query}&via=route" if query else "via=route"
    lean = http.get(f"{path}?{query}" if query else path, headers=headers)
    return lean, http.get(f"{path}?{route_query}", headers=headers)


def _same_answer(lean: httpx.Response, route: httpx.Response, what: Any) -> None:
    assert lean.status_code == route.status_code, (what, lean.text, route.text)
    assert lean.headers["content-type"] == route.headers["content-type"], what
    assert lean.json() == route.json(), what
    assert lean.content == route.content, what  # the same bytes too (orjson writes as the stdlib here)


def _history_queries(cursors: list[int]) -> list[str]:
    """Sizes and cursors the route takes and those it refuses (422) or parses its own way."""
    plain = ["", "limit=1", "limit=100", "limit=500", "limit=2&after=0", "after=9223372036854775807"]
    plain += [q for c in cursors for q in (f"after={c}", f"limit=2&after={c}", f"after={c}&limit=1")]
    odd = [
        "limit=0",
        "limit=501",
        "limit=abc",
        "limit=1.5",
        "limit=-1",
        "limit=",
        "limit=007",
        "limit=1&limit=3",
    ]
    odd += ["after=-1", "after=9223372036854775808", "after=x", "limit=%31", "limit=1&", "limit=1e2"]
    return plain + odd


def test_history_answers_and_error_codes_agree(harness: Harness) -> None:
    """Every reader of the read matrix, page sizes and cursors, on a prescription and a station's readings."""
    hospital, pharmacy = harness.client("hospital-1"), harness.client("pharmacy-1")
    rx_id = new_rx_id()
    issued = hospital.submit("rx.issue", rx_issue(rx_id))
    assert issued.status_code == 202, issued.text
    dispensed = pharmacy.submit("rx.dispense", rx_dispense(rx_id))
    assert dispensed.status_code == 202, dispensed.text
    station = harness.client("station-1")
    bodies = [station.body("env.reading", p) for p in hj212_packets(120)]
    r = harness.http.post("/api/v1/records:bulk", json={"records": bodies}, headers=station.headers)
    assert r.status_code == 200 and r.json()["accepted"] == 120, r.text
    readings = bodies[0]["record"]["subject"]

    def settled(subject: str) -> bool:  # anchored, through its contract if it goes there: answers stay put
        page = harness.client("auditor").get(f"/api/v1/subjects/{subject}/records?limit=500").json()
        return all(i["status"] == "anchored" and i["chain_status"] != "pending" for i in page["items"])

    for subject in (f"rx:{rx_id}", readings):
        harness.wait(lambda subject=subject: settled(subject), timeout=60, what=f"{subject} settled")

    code = {HEADER: str(kit_code(rx_id))}
    readers: dict[str, dict[str, str]] = {
        org: harness.client(org).headers
        for org in ("hospital-1", "hospital-2", "pharmacy-1", "insurer", "auditor", "regulator", "station-1")
    }
    other = harness.client("pharmacy-2").headers
    readers |= {
        "ghost-org": {"Authorization": f"Bearer {harness.tokens['ghost-org']}"},
        "pharmacy-2": other,
        "pharmacy-2 with the code": {**other, **code},
        "pharmacy-2 with another code": {**other, HEADER: str(kit_code(new_rx_id()))},
        "pharmacy-2 with a malformed code": {**other, HEADER: "not a code"},
        "pharmacy-2 with a code too long": {**other, HEADER: "x" * 65},
        "no token": {},
        "basic": {"Authorization": "Basic eDp5"},
        "unknown token": {"Authorization": "Bearer spt_00.nope"},
    }
    seen = {}
    for subject in (f"rx:{rx_id}", readings):
        full = harness.client("auditor").get(f"/api/v1/subjects/{subject}/records?limit=500").json()["items"]
        seen[subject] = len(full)
        # Cursors: the seq of the page's records are not shown; next_cursor of pages of one and of two.
        one = harness.client("auditor").get(f"/api/v1/subjects/{subject}/records?limit=1").json()
        two = (
            harness.client("auditor")
            .get(f"/api/v1/subjects/{subject}/records?limit=2&after={one['next_cursor']}")
            .json()
        )
        cursors = [c for c in (one["next_cursor"], two["next_cursor"]) if c is not None]
        path, encoded = (
            f"/api/v1/subjects/{subject}/records",
            f"/api/v1/subjects/{quote(subject, safe='')}/records",
        )
        for name, headers in readers.items():
            for query in _history_queries(cursors):
                _same_answer(*_history_both(harness.http, path, query, headers), (subject, name, query))
            _same_answer(*_history_both(harness.http, encoded, "limit=3", headers), (subject, name, encoded))
    assert seen[f"rx:{rx_id}"] == 2 and seen[readings] >= 120

    # What they agree on is the matrix: the issuer and dispenser read both, the code's holder both, another
    # pharmacy nothing; a page of one names the next; an unknown subject is empty; errors as the route's.
    path = f"/api/v1/subjects/rx:{rx_id}/records"
    counts = {
        name: len(_history_both(harness.http, path, "", headers)[0].json()["items"])
        for name, headers in readers.items()
        if "token" not in name and "basic" not in name and "malformed" not in name and "long" not in name
    }
    assert counts == {
        "hospital-1": 2,
        "hospital-2": 0,
        "pharmacy-1": 2,
        "insurer": 2,
        "auditor": 2,
        "regulator": 2,
        "station-1": 0,
        "ghost-org": 0,
        "pharmacy-2": 0,
        "pharmacy-2 with the code": 2,
        "pharmacy-2 with another code": 0,
    }
    auditor = readers["auditor"]
    page = _history_both(harness.http, path, "limit=1", auditor)[0].json()
    assert len(page["items"]) == 1 and page["next_cursor"] is not None and page["subject"] == f"rx:{rx_id}"
    assert page["items"][0]["id"] == issued.json()["id"] and page["items"][0]["kind"] == "rx.issue"
    _same_error(*_history_both(harness.http, path, "limit=0", auditor), 422, "REQUEST_INVALID")
    _same_error(*_history_both(harness.http, path, "", {}), 401, "AUTH_REQUIRED")
    _same_error(
        *_history_both(harness.http, path, "limit=0", {"Authorization": "Bearer spt_00.nope"}),
        401,
        "TOKEN_INVALID",
    )
    last = _history_both(harness.http, path, "after=9223372036854775807", auditor)[0]
    assert (last.status_code, last.json()["items"]) == (200, [])  # beyond PostgreSQL's INTEGER seq too
    malformed = {**other, HEADER: "not a code"}
    _same_error(*_history_both(harness.http, path, "", malformed), 400, "ACCESS_CODE_MALFORMED")
    for unknown in ("rx:RX0000000000", "rx:RX0000000000/records", "", "x:a/b", "x:a%2Fb", "rx%3ARX00"):
        lean, route = _history_both(harness.http, f"/api/v1/subjects/{unknown}/records", "", auditor)
        _same_answer(lean, route, unknown)
        assert lean.status_code == 200 and lean.json()["items"] == [], unknown
    assert (
        _history_both(harness.http, "/api/v1/subjects/x:a%2Fb/records", "", auditor)[0].json()["subject"]
        == "x:a/b"
    )

    # Each item is RecordPublic's dump of its row, on this database.
    items = _history_both(harness.http, f"/api/v1/subjects/{readings}/records", "limit=500", auditor)[0]
    gw = harness.server.app.state.gateway
    with gw.db.session() as s:
        rows = s.exec(select(Record).where(Record.subject == readings).order_by(col(Record.seq))).all()
    assert len(items.json()["items"]) == min(500, len(rows))
    for row, item in zip(rows, items.json()["items"], strict=False):
        fields = {f: getattr(row, f) for f in RecordPublic.model_fields if f != "status"}
        assert RecordPublic(**fields, status=item["status"]).model_dump(mode="json") == item


def test_history_of_subjects_with_a_slash_agree(harness: Harness, tmp_path: Path) -> None:
    """The envelope's subject pattern allows "/" (no adapter's ids do): rows of such subjects, written in a
    gateway of their own with its workers off, read alike percent-encoded or not, the template's "/records"
    taken as the last one (Starlette's ``path``)."""
    subject = "station:a/b/records"
    with workerless_gateway(harness, tmp_path, "station-1") as (settings, http):
        db = Database(settings.database_url)
        try:
            tokens = {org: mint_token(db, org) for org in ("station-2", "auditor")}
            with db.session() as s:
                for i in range(7):  # station-1's and station-2's by turns, the first four in the log
                    s.add(
                        _row(
                            i, subject, "station-1" if i % 2 else "station-2", leaf_index=i if i < 4 else None
                        )
                    )
                s.add(_row(7, "station:a/b", "station-1"))
                s.commit()
        finally:
            db.dispose()
        readers = {
            "station-1": http.headers,
            **{o: {"Authorization": f"Bearer {t}"} for o, t in tokens.items()},
        }
        seen = {}
        for name, headers in readers.items():
            for path in (
                "/api/v1/subjects/station:a/b/records/records",
                "/api/v1/subjects/station%3Aa%2Fb%2Frecords/records",
            ):
                for query in ("", "limit=2", "limit=2&after=2", "limit=0", "after=x"):
                    lean, route = _history_both(http, path, query, headers)
                    _same_answer(lean, route, (name, path, query))
            page = _history_both(http, path, "", headers)[0].json()
            assert page["subject"] == subject
            seen[name] = [item["nonce"] for item in page["items"]]
            statuses = {item["status"] for item in page["items"]}
            assert statuses <= {"sequenced", "accepted"}
        assert seen == {
            "station-1": [f"{i:032x}" for i in (1, 3, 5)],
            "station-2": [f"{i:032x}" for i in (0, 2, 4, 6)],
            "auditor": [f"{i:032x}" for i in range(7)],
        }
        short = _history_both(http, "/api/v1/subjects/station:a/b/records", "", readers["auditor"])
        assert [item["nonce"] for item in short[0].json()["items"]] == [f"{7:032x}"]


def _row(i: int, subject: str, org: str, *, leaf_index: int | None = None) -> Record:
    """A record row as the intake writes one (its envelope's fields, not a signed record: nothing logs it)."""
    return Record(
        id=f"{i:064x}",
        kind="env.reading",
        subject=subject,
        org=org,
        timestamp="2026-12-01T00:00:00Z",
        nonce=f"{i:032x}",
        payload_digest="ab" * 32,
        signature="MEUCIQ" + "A" * 90,
        accepted_at=1764547200.25 + i,
        signer_key_index=0,
        signer_public_key="",
        leaf_index=leaf_index,
    )
