"""The /verify page shows a dataset's history (issue #18): served by a real gateway on a real network, a
``dataset:<id>`` look-up lists the dataset's records in log order, each verified on the keys OrgRegistry
holds, its life (collected → stored → requested → consented → accessed → settled → countersigned) and the
datasets upstream and downstream of it, each a look-up of its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from tests.kit.data_life import collected, countersigned, derived, fresh, now, opened, settled, stored
from tests.kit.gateway import Harness, OrgClient, share_access, share_consent, share_request
from tests.kit.webui import PageProbe

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def _ok(client: OrgClient, kind: str, payload: dict[str, object]) -> str:
    r = client.submit(kind, payload)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
def dataset_life(harness: Harness) -> tuple[str, str, list[str]]:
    """A dataset collected, stored, shared under a consent, accessed, derived into an opened output and the
    period settled by both sides: (input dataset, output dataset, the input's record ids in order)."""
    owner, user = harness.client("data-owner"), harness.client("data-user")
    dataset, out, request_id = fresh("census"), fresh("census-rates"), fresh("REQ")
    ids = [_ok(owner, "data.collected", collected(dataset))]
    assert harness.wait_chain(ids[0])["chain_status"] == "confirmed"  # registered: requests may name it
    ids.append(_ok(owner, "data.stored", stored(dataset)))
    ids.append(_ok(user, "share.request", share_request(request_id, "data-user", dataset=dataset)))
    ids.append(_ok(owner, "share.consent", share_consent(request_id, dataset=dataset)))
    consent_digest = str(harness.record(ids[-1])["payload_digest"])
    start = now(-timedelta(minutes=1))
    ids.append(
        _ok(user, "share.access", share_access(request_id, consent_digest, "data-user", dataset=dataset))
    )
    derivation = _ok(user, "data.derived", derived(out, [{"dataset": dataset, "request_id": request_id}]))
    _ok(user, "data.stored", stored(out))
    opening = _ok(user, "data.opened", opened(out))
    proposal = {**settled(request_id, start, now(timedelta(seconds=1)), 1), "dataset": dataset}
    ids.append(_ok(owner, "data.settled", proposal))
    digest = str(harness.record(ids[-1])["payload_digest"])
    ids.append(_ok(user, "data.countersigned", {**countersigned(proposal, digest), "dataset": dataset}))
    for rid in [*ids, derivation, opening]:
        harness.wait_status(rid, "anchored", timeout=60)
    return dataset, out, ids


@pytest.fixture
def page_probe(browser: Browser, harness: Harness) -> Iterator[PageProbe]:
    context = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    p = PageProbe(page=page, base=harness.server.url)
    page.on(
        "console",
        lambda m: (
            m.type == "error" and not any(a in m.text for a in p.allowed_errors) and p.errors.append(m.text)
        ),
    )
    page.on("pageerror", lambda exc: p.errors.append(f"pageerror: {exc}"))
    try:
        yield p
    finally:
        context.close()
    assert p.errors == [], "the page logged errors"


# Rows whose verdict is in (an anchor looked up on chain first is "pending").
_DONE = ".subject-result tbody tr[data-verdict]:not([data-verdict=pending])"


def _rows_done(p: PageProbe, subject: str, rows: int) -> None:
    p.page.locator(f'.subject-result[data-subject="{subject}"]').wait_for(timeout=20_000)
    p.page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length === n", arg=[_DONE, rows], timeout=30_000
    )


def _look_up(p: PageProbe, subject: str, rows: int) -> None:
    p.page.fill("#q", subject)
    p.page.press("#q", "Enter")
    _rows_done(p, subject, rows)


def test_dataset_history_with_its_lineage(
    page_probe: PageProbe, harness: Harness, dataset_life: tuple[str, str, list[str]]
) -> None:
    dataset, out, ids = dataset_life
    p, page = page_probe, page_probe.page
    p.open()
    page.fill("#token", harness.tokens["auditor"])  # an auditor reads every record and lineage
    page.locator("#rpc").fill(harness.network.rpc_url)  # the signers' keys as OrgRegistry holds them
    page.locator("#rpc").dispatch_event("change")
    page.locator("#rpc-status[data-state=ready]").wait_for(timeout=20_000)
    _look_up(p, f"dataset:{dataset}", len(ids))
    rows = page.locator(".subject-result tbody tr")
    assert [r.get_attribute("data-record") for r in rows.all()] == ids  # log order
    assert {r.get_attribute("data-verdict") for r in rows.all()} == {"verified"}
    life = page.locator(".dataset-life li")
    assert [li.get_attribute("data-stage") for li in life.all()] == [
        "collected",
        "stored",
        "requested",
        "consented",
        "accessed",
        "settled",
        "countersigned",
    ]
    assert [li.get_attribute("data-record") for li in life.all()] == ids
    down = page.locator(".lineage-downstream li")
    down.first.wait_for(timeout=20_000)
    assert [li.get_attribute("data-dataset") for li in down.all()] == [out]
    assert "owner data-user" in down.first.inner_text()
    assert page.locator(".lineage-upstream").count() == 0  # collected, not derived
    p.shot("dataset-history")

    # Downstream is a look-up of its own: the output's life, and the input upstream of it.
    down.first.locator("button").click()
    _rows_done(p, f"dataset:{out}", 3)
    assert [li.get_attribute("data-stage") for li in page.locator(".dataset-life li").all()] == [
        "derived",
        "stored",
        "opened",
    ]
    up = page.locator(".lineage-upstream li")
    up.first.wait_for(timeout=20_000)
    assert [li.get_attribute("data-dataset") for li in up.all()] == [dataset]
    assert page.locator("#q").input_value() == f"dataset:{out}"


def test_a_dataset_without_lineage_still_shows_its_records(page_probe: PageProbe, harness: Harness) -> None:
    """A subject the lineage read does not know (DATASET_UNKNOWN): its records show, the lineage says none."""
    p, page = page_probe, page_probe.page
    p.allowed_errors.append("status of 404")
    p.open()
    page.fill("#token", harness.tokens["data-owner"])
    page.fill("#q", "dataset:never-collected")
    page.press("#q", "Enter")
    page.locator('[data-lineage="none"]').wait_for(timeout=20_000)
    assert page.locator(".dataset-life").count() == 0
