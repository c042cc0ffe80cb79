"""The /verify page with a trust file that sets a witness policy (2 of 3): the verdict of each witnessed
golden bundle matches `provenance verify --trust`, a missing quorum names who cosigned, and without the
policy the cosignature lines are ignored (tests/assets/bundles/witnessed.py makes the files)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest

from provenance.cli import main as cli_main
from tests.kit.webui import BUNDLES, PageProbe

TRUST = BUNDLES / "trust-witnesses.json"
# Bundle -> (step that fails, Python error code) under the witness policy.
WITNESSED: dict[str, tuple[str | None, str | None]] = {
    "witnessed.json": (None, None),
    "witnessed-1-of-3.json": ("checkpoint", "WITNESS_QUORUM_MISSING"),
    "witnessed-bad-cosignature.json": ("checkpoint", "CHECKPOINT_INVALID"),
    "valid.json": ("checkpoint", "WITNESS_QUORUM_MISSING"),  # no cosignature at all
}


def _python(name: str) -> dict[str, object]:
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli_main(["verify", "--json", "--trust", str(TRUST), str(BUNDLES / name)])
    assert status in (0, 1), out.getvalue()
    report: dict[str, object] = json.loads(out.getvalue())
    return report


def _verdict(probe: PageProbe) -> tuple[bool, str | None]:
    page = probe.page
    verdict = page.locator("#results .verdict").first
    verdict.wait_for()
    failed = [
        li.get_attribute("data-step")
        for li in page.locator("#results .bundle-result ol.steps > li").all()
        if li.get_attribute("data-status") == "failed"
    ]
    return verdict.get_attribute("data-verdict") == "verified", (failed[0] if failed else None)


@pytest.mark.parametrize("name", list(WITNESSED))
def test_witness_policy_verdicts_match_python(probe: PageProbe, name: str) -> None:
    step, code = WITNESSED[name]
    report = _python(name)
    assert (report.get("failed_step"), report.get("code")) == (step, code)
    probe.open()
    page = probe.page
    page.set_input_files("#trust", str(TRUST))
    page.locator("#trust-status", has_text="organisations").wait_for(timeout=10_000)
    page.set_input_files("#file", str(BUNDLES / name))
    assert _verdict(probe) == (step is None, step)
    if name == "witnessed.json":
        note = page.locator('li[data-step="checkpoint"] .note').inner_text()
        assert (
            "golden.shancheng.test/witness/regulator" in note
            and "golden.shancheng.test/witness/auditor" in note
        )
    elif code == "WITNESS_QUORUM_MISSING":
        reason = page.locator('li[data-step="checkpoint"] .reason').inner_text()
        expected = "golden.shancheng.test/witness/auditor" if name == "witnessed-1-of-3.json" else "—"
        assert "of the 2 witness cosignatures" in reason and expected in reason, reason
        assert (
            str(report["message"])
            .split("(cosigned by: ")[1]
            .startswith("golden.shancheng.test/witness/auditor" if expected != "—" else "none")
        )
    else:
        assert "does not verify" in page.locator('li[data-step="checkpoint"]').inner_text()
    assert probe.errors == []


def test_without_a_policy_cosignature_lines_are_ignored(probe: PageProbe) -> None:
    probe.open()
    page = probe.page
    page.set_input_files("#trust", str(BUNDLES / "trust.json"))
    page.locator("#trust-status", has_text="organisations").wait_for(timeout=10_000)
    page.set_input_files("#file", str(BUNDLES / "witnessed-1-of-3.json"))
    assert _verdict(probe) == (True, None)
    page.set_input_files("#trust", str(TRUST))
    page.locator(".verdict[data-verdict=failed]").wait_for()  # re-verified under the policy
    assert _verdict(probe) == (False, "checkpoint")
