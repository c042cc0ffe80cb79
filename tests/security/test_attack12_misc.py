"""The twelfth outside attack's remaining findings replayed through the real gateway over HTTP with real SM2
keys: a dataset id taken again in another case (A), a resubmission answered as accepted for other bytes (B),
and the prescription check and bundle reads answering alike for an invisible and an unknown id (C)."""

from __future__ import annotations

from tests.gateway.test_data_lifecycle import _ok, _refused
from tests.kit.data_life import collected, derived, fresh, stored
from tests.kit.gateway import Harness, consented, error_code


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
