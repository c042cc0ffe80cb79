"""A derived dataset keeps its inputs' restrictions (the fourth attack, issue #18): through the real gateway,
a copy made under a consent is not stored below its input's class, not opened, and derived from again only
for the consent's purpose while it lives; each refusal with its code and nothing kept. Derived data whose
inputs are open, or its owner's own openable data, is stored and opened as any other."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from provenance.timestamps import parse_rfc3339
from tests.gateway.test_data_lifecycle import _ok, _refused, _revoke
from tests.kit.data_life import collected, derived, fresh, opened, stored
from tests.kit.gateway import Harness, chain_lead, share_consent, share_request

ADS = "商业广告营销"


def _dataset(harness: Harness, classification: str) -> str:
    """A dataset of data-owner's, registered on chain and stored at ``classification``."""
    dataset = fresh("census")
    record_id = _ok(harness.client("data-owner"), "data.collected", collected(dataset))
    assert harness.wait_chain(record_id)["chain_status"] == "confirmed"  # registered: requests may name it
    _ok(harness.client("data-owner"), "data.stored", stored(dataset, classification))
    return dataset


def _copy(output: str, inputs: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {**derived(output, inputs, **kw), "method": "copy all rows verbatim"}


def test_a_consent_is_not_laundered_through_a_derived_copy(harness: Harness) -> None:
    owner, user = harness.client("data-owner"), harness.client("data-user")
    census, request_id = _dataset(harness, "important"), fresh("REQ")
    _ok(user, "share.request", share_request(request_id, "data-user", dataset=census))
    _ok(owner, "share.consent", share_consent(request_id, dataset=census))
    copy = fresh("copy")
    _ok(user, "data.derived", _copy(copy, [{"dataset": census, "request_id": request_id}]))
    # Stored below its input's class: refused; at it, kept.
    _refused(
        user,
        "data.stored",
        {**stored(copy, "general"), "retention_days": 36500},
        403,
        "DATA_CLASS_BELOW_INPUTS",
    )
    _ok(user, "data.stored", stored(copy, "important"))
    # Opened, to everyone or to named organisations: the copy stays under the consent.
    _refused(user, "data.opened", opened(copy), 409, "DATASET_CONSENT_BOUND")
    _refused(user, "data.opened", opened(copy, public=False, to=["data-owner"]), 409, "DATASET_CONSENT_BOUND")
    # Derived from again for another purpose, with or without the consent, or without naming it: refused.
    ads = fresh("ads")
    _refused(user, "data.derived", _copy(ads, [{"dataset": copy}], purpose=ADS), 403, "CONSENT_PURPOSE_BOUND")
    bound = [{"dataset": copy, "request_id": request_id}]
    _refused(user, "data.derived", _copy(ads, bound, purpose=ADS), 403, "CONSENT_PURPOSE_BOUND")
    _refused(user, "data.derived", _copy(ads, [{"dataset": copy}]), 403, "CONSENT_PURPOSE_BOUND")
    # For the consent's purpose, naming it: kept, and the second copy carries the same restrictions.
    second = fresh("copy")
    _ok(user, "data.derived", _copy(second, bound))
    _refused(user, "data.stored", stored(second, "general"), 403, "DATA_CLASS_BELOW_INPUTS")
    _ok(user, "data.stored", stored(second, "important"))
    _refused(
        user, "data.opened", opened(second, public=False, to=["data-owner"]), 409, "DATASET_CONSENT_BOUND"
    )
    _refused(
        user,
        "data.derived",
        _copy(ads, [{"dataset": second, "request_id": request_id}], purpose=ADS),
        403,
        "CONSENT_PURPOSE_BOUND",
    )
    # The withdrawal reaches every copy: nothing more is derived from them.
    _ok(owner, "share.revoke_consent", {**_revoke(request_id), "dataset": census})
    for source in (copy, second):
        again = [{"dataset": source, "request_id": request_id}]
        _refused(user, "data.derived", _copy(fresh("rates"), again), 409, "CONSENT_REVOKED")


def test_derived_data_is_opened_only_as_far_as_its_inputs_are(harness: Harness) -> None:
    owner, user = harness.client("data-owner"), harness.client("data-user")
    # The owner's own data, derived and opened.
    own = _dataset(harness, "general")
    summary = fresh("summary")
    _ok(owner, "data.derived", derived(summary, [{"dataset": own}], analyst="data-owner"))
    _ok(owner, "data.stored", stored(summary))
    _ok(owner, "data.opened", opened(summary))
    # Open data, derived by another organisation and opened.
    _ok(owner, "data.opened", opened(own))
    rates = fresh("rates")
    _ok(user, "data.derived", derived(rates, [{"dataset": own}]))
    _ok(user, "data.stored", stored(rates))
    _ok(user, "data.opened", opened(rates))
    # Data opened to the analyst by name only: what it derives is not opened.
    named = _dataset(harness, "general")
    _ok(owner, "data.opened", opened(named, public=False, to=["data-user"]))
    joined = fresh("joined")
    _ok(user, "data.derived", derived(joined, [{"dataset": named}, {"dataset": own}]))
    _ok(user, "data.stored", stored(joined))
    _refused(user, "data.opened", opened(joined), 403, "DERIVED_INPUT_CLOSED")
    # Core data's class carries over: its derivative is core, never opened.
    core = _dataset(harness, "core")
    digest = fresh("digest")
    _ok(owner, "data.derived", derived(digest, [{"dataset": core}, {"dataset": own}], analyst="data-owner"))
    _refused(owner, "data.stored", stored(digest, "important"), 403, "DATA_CLASS_BELOW_INPUTS")
    _ok(owner, "data.stored", stored(digest, "core"))
    _refused(owner, "data.opened", opened(digest, public=False, to=["data-user"]), 403, "DATA_CLASS_FORBIDS")


def test_a_copy_made_under_a_consent_expires_with_it(harness: Harness) -> None:
    owner, user = harness.client("data-owner"), harness.client("data-user")
    census, request_id = _dataset(harness, "general"), fresh("REQ")
    _ok(user, "share.request", share_request(request_id, "data-user", dataset=census))
    lead = chain_lead(harness)  # the chain's clock, which the consent's expiry is checked against, runs ahead
    consent = share_consent(request_id, dataset=census, valid_for=timedelta(seconds=lead + 10))
    _ok(owner, "share.consent", consent)
    copy = fresh("copy")
    _ok(user, "data.derived", _copy(copy, [{"dataset": census, "request_id": request_id}]))
    expires = parse_rfc3339(consent["expires_at"]).timestamp()
    harness.wait(lambda: time.time() + chain_lead(harness) > expires + 1, timeout=lead + 40, what="expiry")
    again = [{"dataset": copy, "request_id": request_id}]
    _refused(user, "data.derived", _copy(fresh("rates"), again), 409, "CONSENT_EXPIRED")
