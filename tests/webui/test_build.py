"""The committed /verify bundle is what webui/build.mjs makes from the sources (and needs no network)."""

from __future__ import annotations

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
    for name in BUILT:
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), (
            f"gateway/static/verify/{name} is stale: run `node webui/build.mjs` and commit it"
        )


def test_page_loads_nothing_from_elsewhere() -> None:
    """A closed network has no CDN: every URL the page names is relative or a data: URL."""
    html = (STATIC / "index.html").read_text("utf-8")
    for attr in ("src=", "href="):
        for part in html.split(attr)[1:]:
            url = part.split('"')[1]
            assert url.startswith(("data:", "#")) or "://" not in url, url
    assert "//cdn" not in (STATIC / "app.js").read_text("utf-8")
