"""The lean twins of `POST /api/v1/records` and `GET /api/v1/records/{id}/bundle` (``gateway.api.front``)
answer as their documented FastAPI routes do: each answer of the routes, error codes included, through the
real server both ways; and the lean twins do answer what they are meant to (not all handed on)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.routes.records import lean_bundle, lean_submit
from provenance.access_code import HEADER
from provenance.errors import ProvenanceError
from tests.kit.gateway import Harness, error_code, new_rx_id, rx_issue, tamper_signature

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
        handler: Any, method: str, path: str, body: bytes | None, headers: dict[str, str], **params: str
    ) -> Response | None:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "app": app,
        }
        result: Response | None = asyncio.run(handler(Request(scope), body, params))
        return result

    json_auth = {**auth, "content-type": LEAN}
    answered = call(lean_submit, "POST", "/api/v1/records", _raw(_signed(harness)), json_auth)
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

    paths = harness.http.get("/openapi.json").json()["paths"]
    post = paths["/api/v1/records"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RecordSubmit")
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RecordAccepted"
    )
    assert {"401", "403", "409", "413", "422", "503"} <= set(post["responses"])
    assert "get" in paths["/api/v1/records/{record_id}/bundle"]

    assert harness.client("hospital-1").post(_signed(harness)).status_code == 202  # through the server
    metrics = harness.client("regulator").get("/metrics").text
    lean_answers = (
        ("/api/v1/records", "POST", 202),  # the direct calls above are not counted: this one is
        ("/api/v1/records/{record_id}/bundle", "GET", 200),
    )
    for template, method, status in lean_answers:
        assert f'prov_gw_requests_total{{method="{method}",route="{template}",status="{status}"}}' in metrics
