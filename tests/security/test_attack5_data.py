"""The fifth outside attack's data-sharing findings (``attack5-report.md`` 5, 7, 12) replayed through the real
gateway over HTTP with real SM2 keys: the attacker's inputs (``kit5/work/t10``, ``t34``, ``t40``-``t43``,
``t47``), each refused with its own code and nothing kept."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from tests.gateway.test_data_lifecycle import _ok, _refused
from tests.gateway.test_sharing import _another_data_owner
from tests.kit.data_life import collected, countersigned, derived, fresh, now, opened, settled, stored
from tests.kit.gateway import Harness, consented, error_code, share_access, share_request

ADS = "商业广告营销"  # the attacker's purpose: not the consent's


def _access(request_id: str, digest: str, at: str, **kw: Any) -> dict[str, Any]:
    # t40/t43: a batch account of the data user, dated back into a settled period.
    access = share_access(request_id, digest, kw.get("accessor", "data-user:batch-job"))
    return {**access, "fields": kw.get("fields", ["person_id_hash"]), "accessed_at": at}


def _settle(
    harness: Harness, request_id: str, start: str, count: int, *, countersign: bool
) -> dict[str, Any]:
    time.sleep(1.1)  # the period ends after its accesses (whole seconds)
    proposal = settled(request_id, start, now(), count)
    record_id = _ok(harness.client("data-owner"), "data.settled", proposal)
    if countersign:
        digest = str(harness.record(record_id)["payload_digest"])
        _ok(harness.client("data-user"), "data.countersigned", countersigned(proposal, digest))
    return proposal


def test_f5_access_backdated_into_a_settled_or_pending_period_refused(harness: Harness) -> None:
    """F5-5: an access dated inside a period already settled (countersigned) or pending settlement is
    refused (ACCESS_PERIOD_SETTLED, 409): it would never be billed. Outside those periods it is metered, and
    every settlement's meter stays the log's count."""
    user = harness.client("data-user")
    request_id, digest, _ = consented(harness)
    start = now(-timedelta(seconds=20))
    _ok(user, "share.access", _access(request_id, digest, now()))
    first = _settle(harness, request_id, start, 1, countersign=True)  # settled (DEMO-SET-1 in t43)
    inside = now(-timedelta(seconds=10))
    assert first["period_start"] < inside < first["period_end"]
    backdated = _access(request_id, digest, inside, accessor="data-user:bulk-export")
    _refused(
        user,
        "share.access",
        {**backdated, "fields": ["person_id_hash", "insured_status"]},
        409,
        "ACCESS_PERIOD_SETTLED",
    )
    _refused(
        user, "share.access", _access(request_id, digest, first["period_start"]), 409, "ACCESS_PERIOD_SETTLED"
    )
    # A pending settlement's period (t40's second case) is closed to backdated accesses too.
    second_start = first["period_end"]
    _ok(user, "share.access", _access(request_id, digest, now()))
    second = _settle(harness, request_id, second_start, 1, countersign=False)
    _refused(
        user,
        "share.access",
        _access(request_id, digest, second["period_start"]),
        409,
        "ACCESS_PERIOD_SETTLED",
    )
    # The end of a period is not in it; an access there is metered and settles with its own period.
    third_start = second["period_end"]
    _ok(user, "share.access", _access(request_id, digest, third_start))
    r = user.get(f"/api/v1/settlements/{first['settlement_id']}")
    assert (r.status_code, r.json()["access_count"]) == (200, 1), r.text  # the meter is still the log
    _settle(harness, request_id, third_start, 1, countersign=False)  # exactly the one access: accepted


def test_f7_derivation_naming_a_consent_is_bound_by_it(harness: Harness) -> None:
    """F7-7: an input naming a consent (request_id) must name an existing, live consent of the analyst's for
    that dataset and purpose, granted before ``derived_at``, even when the input is also opened to the
    analyst; the output is bound by it, so t10's chain L1 -> L2 -> L3 for advertising stops at L2."""
    owner, user = harness.client("data-owner"), harness.client("data-user")
    dataset = fresh("census")
    collection = _ok(owner, "data.collected", collected(dataset))
    assert harness.wait_chain(collection)["chain_status"] == "confirmed"  # registered: requests may name it
    _ok(owner, "data.stored", stored(dataset, "important"))
    request_id, _, _ = consented(harness, dataset)
    opening = _ok(owner, "data.opened", opened(dataset, public=False, to=["data-user"]))  # the second basis
    harness.wait_chain(opening)
    # t10: L1 derived under the consent (the dataset is also open to the analyst), stored important.
    under_consent = [{"dataset": dataset, "request_id": request_id}]
    l1 = fresh("at5-L1")
    _ok(user, "data.derived", derived(l1, under_consent))
    _ok(user, "data.stored", stored(l1, "important"))
    _refused(
        user,
        "data.derived",
        derived(fresh("at5-bad"), [{"dataset": l1}], purpose=ADS),
        403,
        "CONSENT_PURPOSE_BOUND",
    )
    _refused(user, "data.derived", derived(fresh("at5-L2"), [{"dataset": l1}]), 403, "CONSENT_PURPOSE_BOUND")
    _refused(user, "data.opened", opened(l1, public=False, to=["pharmacy-2"]), 409, "DATASET_CONSENT_BOUND")
    # t34/t47: a consent named on an open input must exist, be granted, cover that dataset and purpose.
    _refused(
        user,
        "data.derived",
        derived(fresh("at5-in"), [{"dataset": dataset, "request_id": "NOPE-1"}]),
        404,
        "SHARE_REQUEST_UNKNOWN",
    )
    _refused(
        user, "data.derived", derived(fresh("at5-in"), under_consent, purpose=ADS), 403, "INPUT_NOT_COVERED"
    )
    other_request, _, _ = consented(harness)  # a consent for health-stats, named on this dataset
    other = [{"dataset": dataset, "request_id": other_request}]
    _refused(user, "data.derived", derived(fresh("at5-in"), other), 403, "INPUT_NOT_COVERED")
    unconsented = fresh("AT5-REQ")
    _ok(user, "share.request", {**share_request(unconsented, "data-user", dataset=dataset), "purpose": ADS})
    pending = [{"dataset": dataset, "request_id": unconsented}]
    _refused(user, "data.derived", derived(fresh("at5-rq"), pending, purpose=ADS), 409, "CONSENT_MISSING")
    early = {**derived(fresh("at5-early"), under_consent), "derived_at": "2026-12-01T00:00:00Z"}
    _refused(user, "data.derived", early, 403, "DERIVED_OUTSIDE_CONSENT")
    # The opening alone, naming no consent, carries no purpose: allowed, and its output is never opened.
    by_opening = fresh("at5-open")
    _ok(user, "data.derived", derived(by_opening, [{"dataset": dataset}], purpose=ADS))
    _ok(user, "data.stored", stored(by_opening, "important"))
    _refused(
        user, "data.opened", opened(by_opening, public=False, to=["pharmacy-2"]), 403, "DERIVED_INPUT_CLOSED"
    )
    # Under the consent, for its purpose, naming it: as before.
    l2 = fresh("at5-L2")
    _ok(user, "data.derived", derived(l2, [{"dataset": l1, "request_id": request_id}]))


def test_f12_settlement_errors_reveal_nothing_to_a_third_party(harness: Harness) -> None:
    """F5-12: a submitter that is not a side of the request gets one answer for every settlement probe
    (SETTLEMENT_PARTY_MISMATCH, naming only itself): no side, no settled period, no access count. The sides
    keep the precise errors, and read every settlement's terms (period, count, price) they may be told."""
    owner, user = harness.client("data-owner"), harness.client("data-user")
    request_id, digest, _ = consented(harness)
    start = now(-timedelta(seconds=20))
    _ok(user, "share.access", _access(request_id, digest, now()))
    proposal = _settle(harness, request_id, start, 1, countersign=False)
    third = _another_data_owner(harness)
    later = now(timedelta(seconds=2))
    probes = [
        settled(request_id, proposal["period_start"], proposal["period_end"], 999),  # overlaps
        settled(request_id, proposal["period_start"], proposal["period_end"], 1),  # overlaps, right count
        settled(request_id, proposal["period_end"], later, 0),  # free period, right count
        settled(request_id, proposal["period_end"], later, 7),  # free period, wrong count
    ]
    answers = []
    for probe in probes:
        r = third.submit("data.settled", probe)
        answers.append((r.status_code, r.json()["error"]))
    assert all(a[0] == 403 and a[1]["code"] == "SETTLEMENT_PARTY_MISMATCH" for a in answers), answers
    assert {a[1]["message"] for a in answers} == {f"{third.org!r} is neither side of request {request_id!r}"}
    assert all(a[1]["details"] == {"org": third.org} for a in answers), answers
    r = third.get(f"/api/v1/settlements/{proposal['settlement_id']}")
    assert (r.status_code, error_code(r)) == (404, "SETTLEMENT_UNKNOWN")
    # The sides: the precise errors, about terms they read.
    r = owner.submit("data.settled", probes[0])
    assert (r.status_code, error_code(r)) == (409, "SETTLEMENT_EXISTS"), r.text
    assert r.json()["error"]["details"]["period"] == [proposal["period_start"], proposal["period_end"]]
    r = owner.submit("data.settled", probes[3])
    assert (r.status_code, error_code(r), r.json()["error"]["details"]["metered"]) == (
        409,
        "SETTLEMENT_METER_MISMATCH",
        0,
    )
    r = user.get(f"/api/v1/settlements/{proposal['settlement_id']}")
    terms = {k: r.json()[k] for k in ("period_start", "period_end", "access_count", "unit_price")}
    assert terms == {k: proposal[k] for k in terms}, r.text
