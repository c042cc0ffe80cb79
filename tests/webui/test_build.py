"""The committed /verify and /dashboard bundles are what webui/build.mjs makes from the sources (and need no
network)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.kit.webui import ROOT, STATIC

BUILT = ("app.js", "THIRD-PARTY-LICENSES.txt")


def test_committed_bundle_matches_sources(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "esbuild").is_dir():
        pytest.skip("node and the npm packages (npm install) are needed to rebuild the page")
    subprocess.run([node, "webui/build.mjs", str(tmp_path)], cwd=ROOT, check=True, timeout=120)
    for page in ("verify", "dashboard"):  # the /verify page and the supervision dashboard
        for name in BUILT:
            assert (tmp_path / page / name).read_bytes() == (STATIC.parent / page / name).read_bytes(), (
                f"gateway/static/{page}/{name} is stale: run `node webui/build.mjs` and commit it"
            )
    # The dashboard's charting library is bundled (no CDN) and its licence shipped beside it.
    assert "chart.js" in (STATIC.parent / "dashboard" / "THIRD-PARTY-LICENSES.txt").read_text("utf-8")
    assert "http" not in (STATIC.parent / "dashboard" / "index.html").read_text("utf-8")


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "esbuild").is_dir():
        pytest.skip("node and the npm packages (npm install) are needed to run the page's schema reader")
    return node


def test_the_pages_schema_reader_applies_every_shipped_schema(tmp_path: Path) -> None:
    """Second attack, finding 1: the page's schema reader threw "schema keyword minItems is not supported"
    when a user loaded a trust file. The build runs the reader over every schema in provenance/schemas and
    stops on a keyword it does not interpret, a pattern it cannot compile or a $ref it cannot follow; here
    every shipped schema passes, and one with an unknown keyword is refused, naming it."""
    node = _node()
    shipped = sorted(str(p) for p in (ROOT / "provenance" / "schemas").glob("*.schema.json"))
    assert len(shipped) >= 2
    ok = subprocess.run(
        [node, "webui/build.mjs", "--check-schemas", *shipped],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    schema = json.loads((ROOT / "provenance" / "schemas" / "trust.schema.json").read_text("utf-8"))
    schema["$defs"]["witnesses"]["properties"]["keys"]["minItems"] = 1
    schema["$defs"]["org"]["properties"]["id"]["pattern"] = "^(?<unclosed$"
    bad = tmp_path / "trust.schema.json"
    bad.write_text(json.dumps(schema))
    refused = subprocess.run(
        [node, "webui/build.mjs", "--check-schemas", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert "#/$defs/witnesses/properties/keys: keyword minItems is not supported" in refused.stderr
    assert "#/$defs/org/properties/id: pattern does not compile" in refused.stderr


def test_page_loads_nothing_from_elsewhere() -> None:
    """A closed network has no CDN: every URL the page names is relative or a data: URL."""
    html = (STATIC / "index.html").read_text("utf-8")
    for attr in ("src=", "href="):
        for part in html.split(attr)[1:]:
            url = part.split('"')[1]
            assert url.startswith(("data:", "#")) or "://" not in url, url
    assert "//cdn" not in (STATIC / "app.js").read_text("utf-8")
