"""Data sharing: request -> consent -> access; access without, outside or after a consent is refused."""

from __future__ import annotations

import secrets

from gateway_kit import Harness, error_code, share_access, share_consent, share_request


def _request(harness: Harness) -> str:
    request_id = "REQ-" + secrets.token_hex(4)
    r = harness.client("data-user").submit("share.request", share_request(request_id, "data-user"))
    assert r.status_code == 202, r.text
    return request_id


def _consent(harness: Harness, request_id: str) -> str:
    r = harness.client("data-owner").submit("share.consent", share_consent(request_id))
    assert r.status_code == 202, r.text
    digest: str = r.json()["id"]
    rec = harness.record(digest)
    return str(rec["payload_digest"])


def test_consent_then_access(harness: Harness) -> None:
    request_id = _request(harness)
    consent_digest = _consent(harness, request_id)
    user = harness.client("data-user")
    r = user.submit("share.access", share_access(request_id, consent_digest, "data-user"))
    assert r.status_code == 202, r.text
    access = harness.wait_chain(r.json()["id"])
    assert access["chain_status"] == "confirmed", access
    history = user.get("/api/v1/subjects/dataset:health-stats/records").json()["items"]
    kinds = [i["kind"] for i in history if i["id"] == r.json()["id"]]
    assert kinds == ["share.access"]


def test_access_without_consent_refused(harness: Harness) -> None:
    request_id = _request(harness)
    user = harness.client("data-user")
    r = user.submit("share.access", share_access(request_id, "0" * 64, "data-user"))
    assert r.status_code == 409 and error_code(r) == "CONSENT_MISSING"
    r = user.submit("share.access", share_access("REQ-never-made", "0" * 64, "data-user"))
    assert r.status_code == 409 and error_code(r) == "CONSENT_MISSING"


def test_access_outside_or_after_consent_refused(harness: Harness) -> None:
    request_id = _request(harness)
    consent_digest = _consent(harness, request_id)
    user = harness.client("data-user")
    wider = share_access(request_id, consent_digest, "data-user", fields=["household_district"])
    r = user.submit("share.access", wider)
    assert r.status_code == 400 and error_code(r) == "CONSENT_SCOPE_EXCEEDED"
    owner = harness.client("data-owner")
    revoke = {
        "request_id": request_id,
        "dataset": "health-stats",
        "reason": "项目结束",
        "revoked_at": "2026-11-25T12:00:00Z",
    }
    assert owner.submit("share.revoke_consent", revoke).status_code == 202
    r = user.submit("share.access", share_access(request_id, consent_digest, "data-user"))
    assert r.status_code == 409 and error_code(r) == "CONSENT_REVOKED"


def test_sharing_state_codes(harness: Harness) -> None:
    user = harness.client("data-user")
    r = user.submit(
        "share.request", share_request("REQ-" + secrets.token_hex(4), "data-user", dataset="nope")
    )
    assert r.status_code == 404 and error_code(r) == "DATASET_UNKNOWN"
    r = user.submit("share.request", share_request("REQ-" + secrets.token_hex(4), "someone-else"))
    assert r.status_code == 403 and error_code(r) == "ORG_MISMATCH"
    request_id = _request(harness)
    r = user.submit("share.request", share_request(request_id, "data-user"))
    assert r.status_code == 409 and error_code(r) == "SHARE_REQUEST_EXISTS"
    owner = harness.client("data-owner")
    r = owner.submit("share.consent", share_consent("REQ-unknown"))
    assert r.status_code == 404 and error_code(r) == "SHARE_REQUEST_UNKNOWN"
    _consent(harness, request_id)
    r = owner.submit("share.consent", share_consent(request_id))
    assert r.status_code == 409 and error_code(r) == "SHARE_NOT_PENDING"
    r = user.submit("share.consent", share_consent(request_id))
    assert r.status_code == 403 and error_code(r) == "ROLE_FORBIDDEN"
