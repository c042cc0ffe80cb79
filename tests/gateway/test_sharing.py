"""Data sharing: request -> consent -> access; access without, outside or after a consent is refused."""

from __future__ import annotations

import secrets

from eth_account import Account
from web3 import Web3

from devnet.governance import OrgSpec, register_org
from gateway.core.db import Database
from gateway.core.security import mint_token
from provenance.chain.contracts import Role, at
from provenance.crypto import SM2PrivateKey
from tests.kit.gateway import (
    Harness,
    OrgClient,
    error_code,
    share_access,
    share_consent,
    share_request,
    share_revoke_consent,
)


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
    assert owner.submit("share.revoke_consent", share_revoke_consent(request_id)).status_code == 202
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


def _another_data_owner(harness: Harness, role: Role = Role.DATA_OWNER) -> OrgClient:
    """A second data owner (or organisation of ``role``), registered through the committee like the demo
    ones, that owns no dataset."""
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    registry = at(w3, "OrgRegistry", harness.network.contracts["OrgRegistry"])
    # A fresh id: the SQLite and PostgreSQL runs of the suite share one OrgRegistry.
    spec = OrgSpec(
        id=f"{role.name.lower().replace('_', '-')}-{secrets.token_hex(3)}", role=role, name="区数据中心"
    )
    key = SM2PrivateKey.generate()
    account = Account.create().address
    raw = key.public_key().raw()
    register_org(w3, registry, harness.engine.accounts[1:4], spec, account=account, raw_public_key=raw)
    db = Database(harness.settings.database_url)
    try:
        token = mint_token(db, spec.id, label="test")
    finally:
        db.dispose()
    return OrgClient(org=spec.id, key=key, token=token, harness=harness)


def test_only_the_dataset_owner_consents_or_withdraws(harness: Harness) -> None:
    """Another data owner (the right role, not this dataset's owner in DataSharing) may neither consent
    to a request on the dataset nor withdraw its consent: NOT_DATASET_OWNER (403)."""
    other = _another_data_owner(harness)
    request_id = _request(harness)
    r = other.submit("share.consent", share_consent(request_id))
    assert r.status_code == 403 and error_code(r) == "NOT_DATASET_OWNER", r.text
    assert r.json()["error"]["details"] == {"dataset": "health-stats"}
    _consent(harness, request_id)
    r = other.submit("share.revoke_consent", share_revoke_consent(request_id))
    assert r.status_code == 403 and error_code(r) == "NOT_DATASET_OWNER", r.text
    owner = harness.client("data-owner")
    assert owner.submit("share.revoke_consent", share_revoke_consent(request_id)).status_code == 202
