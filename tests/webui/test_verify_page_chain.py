"""The /verify page with a chain node, as `provenance verify --rpc` reads the chain: served by a real gateway
on a real network (our node, contracts, demo organisations), given the node's JSON-RPC URL and no trust
file, the page reads the signer's registered keys from OrgRegistry and looks the anchor up in ProvenanceLog
itself (the node answers CORS). "verified" on the chain's keys; a node that does not answer is "chain
unreachable", never verified; an anchor the chain does not hold fails step "anchor"."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devnet.engines import free_port
from provenance.cli import main as cli_main
from tests.kit.gateway import Harness, env_batch, hj212_packets, hj212_series, register_station
from tests.kit.webui import PageProbe


@pytest.fixture(scope="module")
def anchored_bundle(harness: Harness) -> dict[str, Any]:
    """A real env.reading of station-1, recorded through the gateway and anchored on chain."""
    station = harness.client("station-1")
    r = station.submit("env.reading", hj212_packets(1)[0])
    assert r.status_code == 202, r.text
    record_id = r.json()["id"]
    harness.wait_status(record_id, "anchored")
    got = station.get(f"/api/v1/records/{record_id}/bundle")
    assert got.status_code == 200, got.text
    bundle: dict[str, Any] = got.json()
    # A later anchor: the page must show the record's checkpoint on one history with it (consistency proof).
    later = station.submit("env.reading", hj212_packets(1, start=1)[0])
    assert later.status_code == 202, later.text
    harness.wait_status(later.json()["id"], "anchored")
    after = station.get(f"/api/v1/records/{later.json()['id']}/bundle").json()
    assert after["anchor"]["tree_size"] > bundle["anchor"]["tree_size"]  # an anchor after this one
    return bundle


def _use_node(p: PageProbe, url: str) -> None:
    rpc = p.page.locator("#rpc")
    rpc.fill(url)
    rpc.dispatch_event("change")


def _drop(p: PageProbe, tmp_path: Path, bundle: dict[str, Any], name: str) -> tuple[str, dict[str, str]]:
    file = tmp_path / name
    file.write_text(json.dumps(bundle), "utf-8")
    p.page.set_input_files("#file", str(file))
    # The verdict and its steps read at once from one element: the page may verify again meanwhile (the
    # chain's keys loaded anew) and re-render the results between two separate reads. Only the result whose
    # source line names this file counts: the page reads the file asynchronously, and until then the previous
    # drop's verdict is still on display.
    found = p.page.wait_for_function(
        """(name) => {
          const r = document.querySelector('#results .bundle-result');
          const src = r && r.querySelector(':scope > .source');
          if (!src || !src.textContent.endsWith(name)) return null;
          const v = r.querySelector(':scope > .verdict:not([data-verdict=pending])');
          return v ? [v.dataset.verdict, v.dataset.steps] : null;
        }""",
        arg=name,
        timeout=20_000,
    ).json_value()
    verdict, listed = str(found[0]), str(found[1])
    return verdict, dict(s.split(":", 1) for s in listed.split(",") if s)


def _cli(harness: Harness, tmp_path: Path, bundle: dict[str, Any], name: str) -> dict[str, Any]:
    """`provenance verify --json --trust (orgs export from the chain) --rpc --gateway` on the same bundle."""
    trust = tmp_path / "chain-trust.json"
    node, gw = harness.network.rpc_url, harness.server.url
    if not trust.exists():
        registry = harness.network.contract("OrgRegistry")
        args = ["orgs", "export", "--rpc", node, "--registry", registry, "--gateway", gw, "--out", str(trust)]
        assert cli_main(args) == 0
    file = tmp_path / f"cli-{name}"
    file.write_text(json.dumps(bundle), "utf-8")
    out = io.StringIO()
    with redirect_stdout(out):
        cli_main(["verify", "--json", "--trust", str(trust), "--rpc", node, "--gateway", gw, str(file)])
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def test_page_verifies_on_chain_keys_and_anchor(
    page_probe: PageProbe, harness: Harness, anchored_bundle: dict[str, Any], tmp_path: Path
) -> None:
    p = page_probe
    info = httpx.get(f"{harness.server.url}/api/v1/chain").json()
    p.open()
    page = p.page
    # Prefilled from the gateway that serves the page (GET /api/v1/chain).
    page.locator("#rpc-status[data-state=ready], #rpc-status[data-state=error]").wait_for(timeout=20_000)
    assert page.locator("#rpc").input_value() == info["rpc_url"]
    # The node itself (the gateway's own URL here is a test relay in front of it).
    _use_node(p, harness.network.rpc_url)
    page.locator("#rpc-status[data-state=ready]").wait_for(timeout=20_000)
    assert "OrgRegistry" in page.locator("#rpc-status").inner_text()
    verdict, steps = _drop(p, tmp_path, anchored_bundle, "anchored.json")
    assert verdict == "verified", steps
    assert steps["signer"] == "passed" and steps["checkpoint"] == "passed"
    assert "OrgRegistry" in page.locator('li[data-step="signer"] .note').inner_text()
    # The CLI, given the chain, says the same (its anchor step passed: it also proves the block's seal).
    report = _cli(harness, tmp_path, anchored_bundle, "anchored.json")
    assert report["verdict"] == "verified" and report["ok"], report
    # Held on the node's word (no seal proof in the page): a warning, as the CLI's without sealing keys.
    assert steps["anchor"] == "warning"
    anchor = page.locator('li[data-step="anchor"] .reason').inner_text()
    assert f"chain {anchored_bundle['anchor']['chain_id']} holds this checkpoint" in anchor
    p.shot("chain-verified")

    # Offline (no node): the same bundle is only internally consistent, its anchor not checked.
    _use_node(p, "")
    page.locator("#rpc-status[data-state=off]").wait_for()
    verdict, steps = _drop(p, tmp_path, anchored_bundle, "offline.json")
    assert verdict == "consistent" and steps["anchor"] == "skipped"


def test_dead_node_is_unreachable_never_verified(
    page_probe: PageProbe, anchored_bundle: dict[str, Any], tmp_path: Path
) -> None:
    p = page_probe
    p.allowed_errors.append("ERR_CONNECTION_REFUSED")
    p.open()
    dead = f"http://127.0.0.1:{free_port()}"
    _use_node(p, dead)
    p.page.locator("#rpc-status[data-state=error]").wait_for(timeout=20_000)
    verdict, steps = _drop(p, tmp_path, anchored_bundle, "dead.json")
    assert verdict == "failed" and steps["anchor"] == "failed", steps
    reason = p.page.locator('li[data-step="anchor"] .reason').inner_text()
    assert reason.startswith("Chain unreachable") and dead in reason


def test_anchor_the_chain_does_not_hold_is_refused(
    page_probe: PageProbe, harness: Harness, anchored_bundle: dict[str, Any], tmp_path: Path
) -> None:
    p = page_probe
    p.open()
    _use_node(p, harness.network.rpc_url)
    p.page.locator("#rpc-status[data-state=ready]").wait_for(timeout=20_000)
    forged = json.loads(json.dumps(anchored_bundle))
    forged["anchor"]["tx_hash"] = "0x" + "ab" * 32  # no such transaction on chain
    verdict, steps = _drop(p, tmp_path, forged, "forged-tx.json")
    assert verdict == "failed" and steps["anchor"] == "failed", steps
    assert "is not on chain" in p.page.locator('li[data-step="anchor"] .reason').inner_text()
    report = _cli(harness, tmp_path, forged, "forged-tx.json")
    assert (report["ok"], report["failed_step"], report["code"]) == (False, "anchor", "ANCHOR_INVALID")
    other = json.loads(json.dumps(anchored_bundle))
    other["anchor"]["block_number"] += 1  # the transaction is in another block than the bundle says
    verdict, steps = _drop(p, tmp_path, other, "other-block.json")
    assert verdict == "failed" and steps["anchor"] == "failed", steps
    report = _cli(harness, tmp_path, other, "other-block.json")
    assert (report["ok"], report["failed_step"]) == (False, "anchor")


def test_a_readings_batch_anchor_is_looked_up_on_chain(
    page_probe: PageProbe, harness: Harness, tmp_path: Path
) -> None:
    """A reading of an env.batch: its batch_anchor (EnvMonitoring.anchorBatch) is looked up on the node by
    the page as by `provenance verify --rpc`; one naming a real transaction that anchored no such batch (the
    log's own anchor) fails step "batch_anchor" in both."""
    station = harness.client("station-1")
    mn = register_station(harness.network)
    start = (datetime.now(UTC) - timedelta(seconds=600)).replace(microsecond=0)
    payload = env_batch(hj212_series(mn, start, 20), mn, start, start + timedelta(seconds=20))
    body = station.body("env.batch", payload)

    def sent() -> httpx.Response | None:  # once the gateway's registry watcher has seen the station
        r = station.post(body)
        return None if r.status_code == 404 else r

    r = harness.wait(sent, timeout=20, what="station registered")
    assert r.status_code == 202, r.text
    rid = r.json()["id"]
    harness.wait_status(rid, "anchored", timeout=60)
    assert harness.wait_chain(rid, timeout=60)["chain_status"] == "confirmed"
    bundle = station.get(f"/api/v1/env/batches/{rid}/readings/3/bundle").json()
    assert bundle["batch_anchor"]["root"] == "0x" + payload["root"]

    p = page_probe
    p.open()
    _use_node(p, harness.network.rpc_url)
    p.page.locator("#rpc-status[data-state=ready]").wait_for(timeout=20_000)
    verdict, steps = _drop(p, tmp_path, bundle, "reading.json")
    assert verdict == "verified" and steps["item"] == "passed" and steps["batch_anchor"] == "warning", steps
    held = 'li[data-step="batch_anchor"][data-status=warning] .reason'
    p.page.locator(held, has_text="holds this batch root's anchor").wait_for(timeout=20_000)
    report = _cli(harness, tmp_path, bundle, "reading.json")
    assert report["ok"] and report["steps"][-1]["step"] == "batch_anchor", report

    other = json.loads(json.dumps(bundle))
    other["batch_anchor"].update({k: bundle["anchor"][k] for k in ("tx_hash", "block_number", "block_hash")})
    verdict, steps = _drop(p, tmp_path, other, "other-tx.json")
    # A failed step is final: the log anchor's own look-up may still be under way then.
    assert verdict == "failed" and steps["batch_anchor"] == "failed", steps
    assert steps["anchor"] in ("warning", "pending"), steps
    failed = 'li[data-step="batch_anchor"][data-status=failed] .reason'
    p.page.locator(failed, has_text="anchored no such batch").wait_for(timeout=20_000)
    report = _cli(harness, tmp_path, other, "other-tx.json")
    assert (report["ok"], report["failed_step"], report["code"]) == (
        False,
        "batch_anchor",
        "BATCH_ANCHOR_INVALID",
    )
