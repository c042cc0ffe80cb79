"""FHIR as hospital systems send it, through the real gateway (SQLite, and PostgreSQL with PROV_TEST_PG_URL):
date-only authoredOn, validityPeriod and whenHandedOver read in the deployment's zone (Asia/Shanghai by
default), the medication by a contained Medication, meta and extensions kept; each record verified offline
with the payload exactly as signed."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters._common import canonical_json
from provenance.crypto.sm3 import sm3_hex
from tests.kit.gateway import (
    Harness,
    accepted,
    check_accepted,
    error_code,
    new_rx_id,
    rx_dispense,
    rx_issue,
    workerless_gateway,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MEDICATION = {
    "resourceType": "Medication",
    "id": "amox",
    "code": {
        "coding": [
            {
                "system": "http://www.nhsa.gov.cn/fhir/CodeSystem/yb-drug",
                "code": "XJ01CAA040A001010100139",
                "display": "阿莫西林胶囊 0.25g×24粒",
            }
        ],
        "text": "阿莫西林胶囊",
    },
    "extension": [{"url": "http://his.example.cn/fhir/ext/batch", "valueString": "B2611"}],
}
META = {
    "lastUpdated": "2026-11-25T09:42:11.123+08:00",
    "tag": [{"system": "http://his.example.cn/fhir/tag", "code": "window-3"}],
}


def _by_contained(doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.pop("medicationCodeableConcept")
    out["medicationReference"] = {"reference": "#amox"}
    out["contained"] = [copy.deepcopy(MEDICATION)]
    out["meta"] = META
    out.setdefault("extension", []).append(
        {"url": "http://his.example.cn/fhir/ext/window", "valueString": "3号窗口"}
    )
    return out


def test_date_only_and_contained_medication_issue_and_dispense(harness: Harness) -> None:
    h, rx = harness, new_rx_id()
    today = datetime.now(SHANGHAI).date()
    issue = _by_contained(rx_issue(rx))
    issue["authoredOn"] = today.isoformat()
    last_day = today + timedelta(days=2)
    issue["dispenseRequest"]["validityPeriod"] = {"start": today.isoformat(), "end": last_day.isoformat()}
    issue_id = accepted(h.client("hospital-1").submit("rx.issue", issue))

    # The end date covers its whole day in Asia/Shanghai: the contract holds the first instant after it.
    pharmacy = h.client("pharmacy-1")
    h.wait_chain(issue_id)
    check = h.client("hospital-1").get(f"/api/v1/rx/{rx}/check").json()
    after = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), SHANGHAI)
    assert check["expires_at"] == after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), check
    assert check["valid"]

    dispense = _by_contained(rx_dispense(rx))
    dispense.pop("whenPrepared")
    dispense["whenHandedOver"] = today.isoformat()
    dispense_id = accepted(pharmacy.submit("rx.dispense", dispense))
    assert h.wait_chain(dispense_id)["chain_status"] == "confirmed"

    # Logged, anchored, and verified offline; the payload is the resource as sent, meta and extensions too.
    check_accepted(h, [issue_id, dispense_id])
    for rid, org, doc in ((issue_id, "hospital-1", issue), (dispense_id, "pharmacy-1", dispense)):
        bundle = h.client(org).get(f"/api/v1/records/{rid}/bundle", params={"payload": "true"}).json()
        assert bundle["payload"] == doc
        assert bundle["record"]["payload_digest"] == sm3_hex(canonical_json(doc))


def test_fhir_violations_refused_over_http(harness: Harness) -> None:
    """What the client's own adapter would refuse is sent anyway (digest computed by hand): 400
    FHIR_INVALID naming the field, and nothing is recorded."""
    h, rx = harness, new_rx_id()
    hospital = h.client("hospital-1")
    dangling = _by_contained(rx_issue(rx))
    dangling["medicationReference"] = {"reference": "#missing"}
    hours = rx_issue(rx)
    hours["authoredOn"] = "2026-11-25T09:42:10"  # hours without a zone
    feb = rx_issue(rx)
    feb["dispenseRequest"]["validityPeriod"]["end"] = f"{date.today().year + 1}-02-30"
    for doc, field in (
        (dangling, "medicationReference.reference"),
        (hours, "authoredOn"),
        (feb, "dispenseRequest.validityPeriod.end"),
    ):
        r = hospital.submit("rx.issue", doc, subject=f"rx:{rx}", payload_digest=sm3_hex(canonical_json(doc)))
        assert r.status_code == 400 and error_code(r) == "FHIR_INVALID", r.text
        assert r.json()["error"]["details"]["field"] == field, r.text
    assert h.client("auditor").get(f"/api/v1/subjects/rx:{rx}/records").json()["items"] == []


def test_the_zone_is_the_deployments(harness: Harness, tmp_path: Path) -> None:
    """PROV_GW_FHIR_TIME_ZONE reaches the rules: the same end date expires at midnight UTC on a gateway
    configured for UTC, 8 hours after Asia/Shanghai's (the session's gateway, the default)."""
    rx = new_rx_id()
    last_day = datetime.now(UTC).date() + timedelta(days=2)
    issue = rx_issue(rx)
    issue["dispenseRequest"]["validityPeriod"]["end"] = last_day.isoformat()
    hospital = harness.client("hospital-1")
    body = hospital.body("rx.issue", issue)
    with workerless_gateway(harness, tmp_path, "hospital-1", fhir_time_zone="UTC") as (settings, http):
        assert settings.fhir_time_zone == "UTC"
        assert http.post("/api/v1/records", json=body).status_code == 202
        check = http.get(f"/api/v1/rx/{rx}/check").json()
    assert check["expires_at"] == f"{last_day + timedelta(days=1)}T00:00:00Z", check
    issue_id = accepted(hospital.post(hospital.body("rx.issue", issue)))
    check = hospital.get(f"/api/v1/rx/{rx}/check").json()
    assert check["expires_at"] == f"{last_day}T16:00:00Z", check
    check_accepted(harness, [issue_id])
