"""The /verify page in a real browser: verdicts per golden bundle (cross-checked with `provenance verify`),
lookups, the prescription timeline, the language switch, keyboard use, speed and a clean console."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from provenance.cli import main as cli_main
from provenance.verification.verify import ITEM_STEPS as PY_ITEM_STEPS
from tests.kit.webui import BUNDLES, TOKEN, PageProbe

STEPS = ("digest", "payload", "signer", "signature", "checkpoint", "inclusion", "anchor")
# A reading of an env.batch: its bundle has step "item" after "payload" and "batch_anchor" last
# (docs/formats.md, Batch items and Batch anchors): the page shows the Python verifier's steps.
ITEM_STEPS = PY_ITEM_STEPS

# Golden bundle → the step that must fail (None: every step holds; without a trust file that makes the
# verdict "consistent", never "verified"). Named after the attack each models; issue 25's findings are in
# test_differential.py.
GOLDEN: dict[str, str | None] = {
    "valid.json": None,
    "valid-no-payload.json": None,
    "valid-jcs-edge-cases.json": None,
    # Made by the real gateway (tests/gateway, anchored on a devnet chain) and kept as captured.
    "gateway-sample-rx-dispense.json": None,
    "gateway-sample-env-reading.json": None,
    "gateway-sample-env-batch-reading.json": None,
    "tampered-batch-reading.json": "item",
    # the sample reading with a batch anchor naming another root than the signed batch
    "wrong-batch-anchor.json": "batch_anchor",
    "tampered-record.json": "digest",
    "tampered-payload.json": "payload",
    "signer-mismatch.json": "signer",
    "forged-signature.json": "signature",
    "wrong-checkpoint-signature.json": "checkpoint",
    "wrong-proof.json": "inclusion",
    "wrong-anchor.json": "anchor",
}


def _fixture() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((BUNDLES / "gateway-fixture.json").read_text("utf-8"))
    return doc


def _python_verdict(name: str) -> tuple[str, str | None]:
    """`provenance verify --json FILE` through the command's own entry point, in this process (a
    subprocess per bundle costs ~1.5 s of imports): the verdict (exit status 0 unless failed), the failed
    step."""
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli_main(["verify", "--json", str(BUNDLES / name)])
    assert status in (0, 1), out.getvalue()
    report = json.loads(out.getvalue())
    assert (status == 0) == (report["verdict"] != "failed")
    return report["verdict"], report.get("failed_step")


@pytest.fixture(scope="module")
def python_verdicts() -> dict[str, tuple[str, str | None]]:
    return {name: _python_verdict(name) for name in GOLDEN}


# What an unpinned bundle whose steps all hold shows: no green tick on attribution, the anchor not checked.
UNPINNED_OK = {
    "digest": "passed",
    "payload": "passed",
    "signer": "warning",
    "signature": "passed",
    "checkpoint": "warning",
    "inclusion": "passed",
    "anchor": "skipped",
}


def page_verdict(probe: PageProbe) -> tuple[str, str | None, dict[str, str]]:
    """(verdict, failed step, {step: status}) as the page shows them."""
    page = probe.page
    verdict = page.locator("#results .verdict").first
    verdict.wait_for()
    ok = verdict.get_attribute("data-verdict")
    statuses = {
        li.get_attribute("data-step") or "": li.get_attribute("data-status") or ""
        for li in page.locator("#results .bundle-result ol.steps > li").all()
    }
    failed = [s for s, st in statuses.items() if st == "failed"]
    assert len(failed) <= 1, statuses
    return ok, (failed[0] if failed else None), statuses


@pytest.fixture(scope="module")
def golden_page(shared_probe: PageProbe) -> PageProbe:
    shared_probe.open()
    return shared_probe


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_bundle_verdict_matches_python(
    golden_page: PageProbe, name: str, python_verdicts: dict[str, tuple[str, str | None]]
) -> None:
    probe = golden_page
    probe.page.set_input_files("#file", str(BUNDLES / name))
    probe.page.locator("#results p.source", has_text=f"Source: {name}").wait_for()
    ok, failed, statuses = page_verdict(probe)
    probe.shot(f"bundle-{Path(name).stem}")

    expected = GOLDEN[name]
    assert (ok, failed) == ("consistent" if expected is None else "failed", expected)
    assert (ok, failed) == python_verdicts[name], "the page and `provenance verify` disagree"
    steps = ITEM_STEPS if "batch-reading" in name or "batch-anchor" in name else STEPS
    assert list(statuses) == list(steps)
    if expected is None:
        want_payload = "skipped" if name == "valid-no-payload.json" else "passed"
        item = {"item": "passed", "batch_anchor": "skipped"} if steps is ITEM_STEPS else {}
        assert statuses == UNPINNED_OK | {"payload": want_payload} | item
        assert probe.page.locator('li[data-step="signer"] .icon').inner_text() != "✓"
    else:
        cut = steps.index(expected)
        assert all(statuses[s] in ("passed", "skipped", "warning") for s in steps[:cut])
        assert all(statuses[s] == "skipped" for s in steps[cut + 1 :])
        reason = probe.page.locator(f'li[data-step="{expected}"] .reason').inner_text()
        assert reason and not reason.startswith("reason."), "a failure must come with a plain reason"
    assert probe.errors == [], "the page logged errors"


def test_valid_bundle_shows_anchor_and_checkpoint(probe: PageProbe) -> None:
    valid = json.loads((BUNDLES / "valid.json").read_text("utf-8"))
    probe.open()
    probe.page.set_input_files("#file", str(BUNDLES / "valid.json"))
    results = probe.page.locator("#results")
    results.locator(".verdict").wait_for()
    text = results.inner_text()
    anchor = valid["anchor"]
    for value in (anchor["contract"], anchor["tx_hash"], anchor["block_hash"], str(anchor["block_number"])):
        assert value in text
    assert valid["digest"] in text
    assert "golden.shancheng.test/log" in text


def test_trust_file_pins_keys(probe: PageProbe) -> None:
    probe.open()
    page = probe.page
    assert "No trust file" in page.locator("#trust-status").inner_text()
    page.set_input_files("#file", str(BUNDLES / "valid.json"))
    assert page_verdict(probe)[0] == "consistent"
    # Loading a trust file re-verifies what is shown: the hospital's key had expired by then.
    page.set_input_files("#trust", str(BUNDLES / "trust-hospital-key-expired.json"))
    page.locator(".verdict[data-verdict=failed]").wait_for()
    assert page_verdict(probe)[1] == "signer"
    assert "hosp-1" in page.locator('li[data-step="signer"] .reason').inner_text()
    probe.shot("trust-expired-key")
    page.set_input_files("#trust", str(BUNDLES / "trust.json"))
    page.locator(".verdict[data-verdict=verified]").wait_for()
    assert "registered key" in page.locator('li[data-step="signer"] .note').inner_text()
    assert "6 organisations, 1 log keys" in page.locator("#trust-status").inner_text()
    # Offline the anchor names the pinned chain and contract, and is still only "not checked".
    assert page.locator('li[data-step="anchor"]').get_attribute("data-status") == "skipped"
    assert "not checked" in page.locator('li[data-step="anchor"] .badge').inner_text()
    probe.shot("trust-verified")
    page.click("#trust-clear")
    assert "No trust file" in page.locator("#trust-status").inner_text()
    page.set_input_files("#trust", str(BUNDLES / "valid.json"))  # not a trust file: an error, no verdict
    # The file is read asynchronously: wait for the status to change rather than racing it.
    page.locator("#trust-status", has_text="NOT loaded").wait_for(timeout=10_000)
    page.locator('#results [data-error="error.trust"]').wait_for()


def test_pasted_bundle_and_malformed_input(probe: PageProbe) -> None:
    probe.open()
    page = probe.page
    page.fill("#paste", (BUNDLES / "valid.json").read_text("utf-8"))
    page.click("#verify-paste")
    assert page_verdict(probe)[0] == "consistent"

    page.fill("#paste", '{"media_type": "something else"}')
    page.click("#verify-paste")
    ok, failed, statuses = page_verdict(probe)
    assert (ok, failed) == ("failed", "schema")
    assert all(statuses[s] == "skipped" for s in STEPS)

    page.fill("#paste", "not json {")
    page.click("#verify-paste")
    page.locator('li[data-step="schema"][data-status="failed"]').wait_for()
    probe.shot("paste-not-json")


def test_lookup_needs_a_token(probe: PageProbe) -> None:
    probe.allowed_errors.append("status of 401")  # Chromium logs the 401 response itself
    probe.open()
    page = probe.page
    page.evaluate("sessionStorage.clear()")
    page.fill("#token", "")
    page.fill("#q", "rx:golden-0001")
    page.press("#q", "Enter")
    err = page.locator('[data-error="error.auth"]')
    err.wait_for()
    assert "AUTH_REQUIRED" in err.inner_text()
    assert page.locator("#token").get_attribute("type") == "password"
    page.fill("#token", TOKEN)
    page.press("#q", "Enter")
    page.locator(".timeline").wait_for()


def test_export_file_lists_every_bundle(probe: PageProbe, tmp_path: Path) -> None:
    """An export (JSON Lines, as `provenance export` writes) is verified bundle by bundle."""
    names = list(GOLDEN)
    export = tmp_path / "export.jsonl"
    export.write_text(
        "".join(json.dumps(json.loads((BUNDLES / n).read_text("utf-8"))) + "\n" for n in names), "utf-8"
    )
    probe.open()
    probe.page.set_input_files("#file", str(export))
    rows = probe.page.locator(".export-result tbody tr")
    rows.first.wait_for()
    assert rows.count() == len(names)
    held = [r.get_attribute("data-verdict") for r in rows.all()]
    assert held == ["consistent" if GOLDEN[n] is None else "failed" for n in names]
    probe.shot("export-jsonl")


def test_the_token_never_goes_into_a_url(browser: Any, server: str) -> None:
    """Second attack, finding 9: with JavaScript off (or app.js not loaded yet) Enter in the look-up form
    navigated to /verify/?q=…&token=<bearer token>. The form posts, and the token field has no name: it is
    never sent by the form at all, let alone in a URL; with JavaScript it goes in the Authorization header."""
    html = (BUNDLES.parents[2] / "gateway" / "static" / "verify" / "index.html").read_text("utf-8")
    assert 'id="lookup"' in html and 'method="post"' in html.split('id="lookup"')[1].split(">")[0]
    assert 'name="token"' not in html
    for javascript in (False, True):
        context = browser.new_context(locale="en-US", java_script_enabled=javascript)
        try:
            page = context.new_page()
            sent: list[tuple[str, str, str]] = []
            methods: list[str] = []

            def seen(r: Any, sent: list[tuple[str, str, str]] = sent, methods: list[str] = methods) -> None:
                sent.append((r.url, r.post_data or "", r.headers.get("authorization", "")))
                methods.append(r.method)

            page.on("request", seen)
            page.goto(f"{server}/verify/")
            page.fill("#token", TOKEN)
            page.fill("#q", "rx:golden-0001")
            page.press("#q", "Enter")
            page.wait_for_load_state()
            if javascript:
                page.locator(".subject-result tbody tr[data-verdict]").first.wait_for()
                assert any(auth == f"Bearer {TOKEN}" for *_, auth in sent)
            else:  # the form was submitted, as a POST whose body names only the look-up
                assert "POST" in methods and any("q=rx%3Agolden-0001" in body for _, body, _ in sent)
            assert sent and all(TOKEN not in url + body for url, body, _ in sent), sent
            assert TOKEN not in page.url
        finally:
            context.close()


def test_record_lookup_fetches_and_verifies(probe: PageProbe) -> None:
    record_id = json.loads((BUNDLES / "valid.json").read_text("utf-8"))["digest"]
    probe.open()
    probe.page.fill("#q", record_id)
    probe.page.click("#lookup button[type=submit]")
    ok, _, statuses = page_verdict(probe)
    assert ok == "consistent" and statuses["listing"] == "passed"  # the bundle of the record asked for
    assert f"q={record_id}" in probe.page.url
    probe.shot("lookup-record")


def test_lookup_errors_are_plain(probe: PageProbe) -> None:
    # Chromium itself logs every 404 response as a console error; that one is the point of this test.
    probe.allowed_errors.append("status of 404")
    probe.open()
    page = probe.page
    page.fill("#q", "not a subject")
    page.press("#q", "Enter")
    page.locator('[data-error="error.lookup_format"]').wait_for()
    page.fill("#q", "0" * 64)
    page.press("#q", "Enter")
    err = page.locator('[data-error="error.not_found"]')
    err.wait_for()
    assert "NOT_FOUND" in err.inner_text()  # the gateway's error code, from its error body
    probe.shot("lookup-not-found")


@pytest.mark.parametrize(
    ("subject", "stages"),
    [
        ("rx:golden-0001", ["issued", "dispensed"]),
        ("rx:golden-0002", ["issued", "revoked"]),
        ("rx:golden-0003", ["issued", "expired"]),
    ],
)
def test_prescription_subject_timeline(probe: PageProbe, subject: str, stages: list[str]) -> None:
    history = _fixture()["subjects"][subject]
    probe.open(f"?q={subject}")
    page = probe.page
    timeline = page.locator(".timeline")
    timeline.wait_for()
    # Every record of the history fetched and verified in the browser.
    rows = page.locator(".subject-result tbody tr")
    assert rows.count() == len(history)
    page.locator(".subject-result tbody .badge.consistent").nth(len(history) - 1).wait_for()
    assert page.locator(".subject-result tbody .badge.failed").count() == 0
    assert [li.get_attribute("data-stage") for li in timeline.locator("li").all()] == stages
    assert timeline.get_attribute("data-state") == stages[-1]
    text = timeline.inner_text()
    for item in history:
        assert item["org"] in text
    # The checks of one record open under the table.
    page.locator(".subject-result tbody button").first.click()
    page.locator("#subject-detail .verdict[data-verdict=consistent]").wait_for()
    probe.shot(f"timeline-{subject.replace(':', '-')}")


def test_other_subject_history_without_timeline(probe: PageProbe) -> None:
    probe.open("?q=branch:golden-jcs")
    page = probe.page
    page.locator(".subject-result tbody .badge.consistent").first.wait_for()
    assert page.locator(".subject-result tbody tr").count() == 1
    assert page.locator(".timeline").count() == 0


def test_language_switch_is_remembered(probe: PageProbe) -> None:
    probe.open()
    page = probe.page
    assert page.locator("h1").inner_text() == "Evidence verification"  # English browser locale
    page.set_input_files("#file", str(BUNDLES / "tampered-payload.json"))
    page_verdict(probe)
    page.click("button[data-lang=zh]")
    assert page.locator("h1").inner_text() == "存证核验"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("button[data-lang=zh]").get_attribute("aria-pressed") == "true"
    # The result already shown is re-rendered in Chinese.
    assert "业务数据已被改动" in page.locator('li[data-step="payload"]').inner_text()
    probe.shot("lang-zh")
    page.reload()
    page.wait_for_selector("html[lang=zh-CN]")
    assert page.locator("h1").inner_text() == "存证核验"
    page.click("button[data-lang=en]")
    assert page.locator("h1").inner_text() == "Evidence verification"


def test_keyboard_only_lookup(probe: PageProbe) -> None:
    probe.open()
    page = probe.page
    # Every control has a label.
    for control in ("#file", "#paste", "#q"):
        assert page.locator(control).evaluate("el => el.labels.length") == 1
    page.locator("#q").focus()
    page.keyboard.type("rx:golden-0002")
    page.keyboard.press("Enter")
    page.locator(".timeline").wait_for()
    # Focus moved to the result heading; the results region is announced politely.
    assert page.evaluate("document.activeElement.closest('#results') !== null")
    assert page.locator("#results").get_attribute("aria-live") == "polite"
    page.locator(".subject-result tbody button").first.wait_for()
    page.locator(".subject-result tbody button").first.focus()
    page.keyboard.press("Enter")
    page.locator("#subject-detail .verdict").wait_for()


def test_first_render_and_verification_are_fast(probe: PageProbe) -> None:
    probe.open()
    timing = probe.page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }"
    )
    assert timing["dcl"] < 1000, timing
    record_id = json.loads((BUNDLES / "valid.json").read_text("utf-8"))["digest"]
    elapsed = probe.page.evaluate(
        """async (id) => {
            const t0 = performance.now();
            const input = document.getElementById('paste');
            const auth = {Authorization: `Bearer ${sessionStorage.getItem('shancheng.verify.token')}`};
            input.value = await (await fetch(`/api/v1/records/${id}/bundle`, {headers: auth})).text();
            document.getElementById('verify-paste').click();
            return performance.now() - t0;
        }""",
        record_id,
    )
    assert elapsed < 1000, elapsed
    assert page_verdict(probe)[0] == "consistent"
