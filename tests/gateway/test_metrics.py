"""`/metrics` through prometheus_client (issue 21): latency per route template, records accepted and refused
by kind and code, the log's and the anchorer's progress; and the Grafana dashboard in docs/ops reads only
metrics the gateway exports."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.kit.gateway import Harness, party_meeting, tamper_signature

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "ops" / "grafana-dashboard.json"


def _scrape(harness: Harness) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    r = harness.client("regulator").get("/metrics")
    assert r.status_code == 200, r.text
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return r.text, samples


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_and_records_by_kind_and_code(harness: Harness) -> None:
    branch = harness.client("party-branch")
    _, before = _scrape(harness)
    accepted = branch.submit("party.record", party_meeting("BR-M" + secrets.token_hex(3), "MTG-1"))
    assert accepted.status_code == 202, accepted.text
    forged = branch.post(tamper_signature(branch.body("party.record", party_meeting("BR-M2", "MTG-2"))))
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "SIGNATURE_INVALID"
    # A kind nobody knows is counted as "other": a client cannot add label values (series) at will.
    odd = branch.body("party.record", party_meeting("BR-M3", "MTG-3"))
    odd["record"]["kind"] = "x" + secrets.token_hex(8) + ".kind"
    assert branch.post(odd).status_code >= 400
    probe = "/nope/" + secrets.token_hex(6)
    assert branch.get(probe).status_code == 404
    record_id = accepted.json()["id"]
    assert branch.get(f"/api/v1/records/{record_id}").status_code == 200
    text, after = _scrape(harness)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("prov_gw_records_accepted_total", kind="party.record") == 1
    assert delta("prov_gw_records_rejected_total", kind="party.record", code="SIGNATURE_INVALID") == 1
    assert (
        sum(
            v
            for (n, labels), v in after.items()
            if n == "prov_gw_records_rejected_total" and ("kind", "other") in labels
        )
        >= 1
    )
    assert odd["record"]["kind"] not in text and probe not in text
    # Latency per route template and method, never per path.
    assert delta("prov_gw_request_duration_seconds_count", route="/api/v1/records", method="POST") == 3
    assert (
        delta("prov_gw_request_duration_seconds_count", route="/api/v1/records/{record_id}", method="GET")
        == 1
    )
    assert delta("prov_gw_requests_total", route="/api/v1/records", method="POST", status="202") == 1
    assert delta("prov_gw_requests_total", route="unmatched", method="GET", status="404") == 1
    assert (
        _value(
            after,
            "prov_gw_request_duration_seconds_bucket",
            route="/api/v1/records",
            method="POST",
            le="+Inf",
        )
        >= 3
    )
    # The log's and the anchorer's progress.
    assert _value(after, "prov_gw_anchor_lag_records") == max(
        0, _value(after, "prov_gw_tree_size") - _value(after, "prov_gw_anchored_size")
    )
    assert ("prov_gw_backlog", ()) in after and ("prov_gw_anchor_lag_seconds", ()) in after
    harness.wait_status(record_id, "anchored", timeout=60)
    _, settled = _scrape(harness)
    assert _value(settled, "prov_gw_tree_size") >= 1 and _value(settled, "prov_gw_anchored_size") >= 1
    # The existing access rule holds: no token, no metrics.
    assert harness.http.get("/metrics").status_code == 401


def test_grafana_dashboard_reads_only_exported_metrics(harness: Harness) -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    wanted = {m for e in exprs for m in re.findall(r"\bprov_gw_[a-z_]+", e)}
    text, _ = _scrape(harness)
    exported = set(re.findall(r"^(prov_gw_[a-z_]+)", text, re.MULTILINE))
    # Witness series exist only with witnesses (tests/gateway/test_witnessing.py scrapes them).
    missing = {m for m in wanted - exported if not m.startswith("prov_gw_witness_")}
    assert not missing, missing
    assert {
        "prov_gw_request_duration_seconds_bucket",
        "prov_gw_records_rejected_total",
        "prov_gw_backlog",
        "prov_gw_anchor_lag_seconds",
        "prov_gw_tree_size",
    } <= wanted
