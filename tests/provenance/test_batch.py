"""Export verification: blocks of lines to the workers, line numbers, blank lines, one verdict per line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance.verification import batch
from provenance.verification.batch import verify_export
from provenance.verification.trust import TrustStore

BUNDLES = Path(__file__).resolve().parents[1] / "assets" / "bundles"
TRUST = TrustStore.load(BUNDLES / "trust.json")


def _line(name: str) -> bytes:
    return json.dumps(json.loads((BUNDLES / name).read_text("utf-8")), ensure_ascii=False).encode()


def _export(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """An export mixing good and bad lines, blank lines and a CRLF line; returns the failing lines' steps."""
    valid = _line("valid.json")
    lines = [
        valid,  # 1
        b"",  # 2 blank
        _line("tampered-payload.json"),  # 3
        b"  \t",  # 4 blank
        valid + b"\r",  # 5 CRLF
        b"{not json",  # 6
        _line("wrong-proof.json"),  # 7
        b'{"media_type": "\xff"}',  # 8 not UTF-8
        _line("wrong-checkpoint-signature.json"),  # 9
        valid,  # 10, no newline at the end
    ]
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(lines))
    return path, {3: "payload", 6: "schema", 7: "inclusion", 8: "schema", 9: "checkpoint"}


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 3000, 100])  # whole file, a few lines, part of a line
@pytest.mark.parametrize("workers", [1, 2])
def test_every_line_once_with_its_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int, workers: int
) -> None:
    monkeypatch.setattr(batch, "CHUNK_BYTES", chunk_bytes)
    path, failing = _export(tmp_path)
    seen: list[int] = []
    summary = verify_export(path, trust=TRUST, workers=workers, progress=seen.append)
    assert summary.total == 8 and sum(seen) == 8
    assert {f.line: f.step for f in summary.failures} == failing
    assert summary.verified == 3


def test_blocks_are_whole_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "CHUNK_BYTES", 7)
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"a\nbbbbbbbbbbbbbbbbbbbb\n\nccc\r\nd")
    blocks = list(batch._blocks(path))
    assert b"".join(b for _, b in blocks) == path.read_bytes()
    assert all(b.endswith(b"\n") for _, b in blocks[:-1])
    numbers = [first + i for first, b in blocks for i, _ in enumerate(b.splitlines())]
    assert numbers == [1, 2, 3, 4, 5]
