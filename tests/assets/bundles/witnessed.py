"""Make the witnessed golden bundles from ``valid.json`` (from the repo root, SDK importable):
`PYTHONPATH=. .venv/bin/python tests/assets/bundles/witnessed.py`.

The witness keys are the TEST FIXTURES of ``tests/assets/witness/``. Outputs, beside this script:
- ``witnessed.json``: ``valid.json`` with two of the three witnesses' cosignatures on its checkpoint;
- ``witnessed-1-of-3.json``: one cosignature only (a split view's second history looks like this);
- ``witnessed-bad-cosignature.json``: a trusted witness's line over another checkpoint, and a valid one;
- ``trust-witnesses.json``: ``trust.json`` with the three witnesses and a 2-of-3 policy.
Re-run it after ``generate.py`` (which re-signs ``valid.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from provenance.crypto import SM2PrivateKey
from provenance.log.checkpoint import Checkpoint, open_note
from provenance.log.cosignature import WitnessKey, WitnessPolicy, cosign

HERE = Path(__file__).resolve().parent
WITNESS_KEYS = HERE.parent / "witness"
ORGS = ("regulator", "auditor", "env-bureau")
TIME = 1_767_225_600


def main() -> None:
    keys = [
        SM2PrivateKey.from_pem((WITNESS_KEYS / f"test-fixture-witness-{i}-sm2-key.pem").read_bytes())
        for i in (1, 2, 3)
    ]
    names = [f"golden.shancheng.test/witness/{org}" for org in ORGS]
    valid = json.loads((HERE / "valid.json").read_text("utf-8"))
    note = valid["log"]["checkpoint"]
    body = open_note(note)[0].encode()
    other = Checkpoint.from_body(body.decode())
    other = Checkpoint(origin=other.origin, size=other.size + 1, root=other.root).body()

    def line(i: int, text: bytes = body) -> str:
        return cosign(text, names[i], keys[i], timestamp=TIME)

    def with_note(lines: str) -> dict[str, object]:
        doc = json.loads(json.dumps(valid))
        doc["log"]["checkpoint"] = note + lines
        return doc

    policy = WitnessPolicy(
        witnesses=tuple(
            WitnessKey(name=n, public_key=k.public_key(), org=o)
            for n, k, o in zip(names, keys, ORGS, strict=True)
        ),
        quorum=2,
    )
    trust = json.loads((HERE / "trust.json").read_text("utf-8"))
    out = {
        "witnessed.json": with_note(line(0) + line(1)),
        "witnessed-1-of-3.json": with_note(line(1)),
        "witnessed-bad-cosignature.json": with_note(line(0, other) + line(1)),
        "trust-witnesses.json": {**trust, "witnesses": policy.to_dict()},
    }
    for name, doc in out.items():
        (HERE / name).write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
