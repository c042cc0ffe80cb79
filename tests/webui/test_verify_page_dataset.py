"""The /verify page shows a dataset's history (issue #18): served by a real gateway on a real network, a
``dataset:<id>`` look-up lists the dataset's records in log order, each verified on the keys OrgRegistry
holds, its life (collected → stored → requested → consented → accessed → settled → countersigned → opened)
and the datasets upstream and downstream of it, each a look-up of its own."""

from __future__ import annotations

import pytest

from tests.kit.data_life import Life, record_life
from tests.kit.gateway import Harness
from tests.kit.webui import PageProbe


@pytest.fixture(scope="module")
def life(harness: Harness) -> Life:
    recorded = record_life(harness)
    for rid in recorded.ids:
        harness.wait_status(rid, "anchored", timeout=60)
    return recorded


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


def test_dataset_history_with_its_lineage(gateway_probe: PageProbe, harness: Harness, life: Life) -> None:
    dataset, out, ids = life.dataset, life.out, life.input_ids
    p, page = gateway_probe, gateway_probe.page
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
        "opened",
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
    _rows_done(p, f"dataset:{out}", 2)
    assert [li.get_attribute("data-stage") for li in page.locator(".dataset-life li").all()] == [
        "derived",
        "stored",
    ]
    up = page.locator(".lineage-upstream li")
    up.first.wait_for(timeout=20_000)
    assert [li.get_attribute("data-dataset") for li in up.all()] == [dataset]
    assert page.locator("#q").input_value() == f"dataset:{out}"


def test_a_dataset_without_lineage_still_shows_its_records(
    gateway_probe: PageProbe, harness: Harness
) -> None:
    """A subject the lineage read does not know (DATASET_UNKNOWN): its records show, the lineage says none."""
    p, page = gateway_probe, gateway_probe.page
    p.allowed_errors.append("status of 404")
    p.open()
    page.fill("#token", harness.tokens["data-owner"])
    page.fill("#q", "dataset:never-collected")
    page.press("#q", "Enter")
    page.locator('[data-lineage="none"]').wait_for(timeout=20_000)
    assert page.locator(".dataset-life").count() == 0
