"""The golden samples under ``tests/assets/`` and the kind each one is; shared by the adapter tests.

Regenerate the pinned results after an intended format change with
``python -m tests.kit.adapter_samples`` (then review the diff: a changed digest is a changed format).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DOMAINS = ("fhir", "sharing", "party", "hj212")
# The deployment key of the pseudonyms in facts, pinned for the golden results (a gateway derives its own
# from its KEK); the FHIR samples' access codes are ``tests.kit.gateway.kit_code`` of their rx ids.
PSEUDONYM_KEY = bytes(range(32))


def kind_of(path: Path) -> str:
    """The record kind of a golden sample, from its folder and name."""
    domain, name = path.parent.name, path.stem
    if domain == "fhir":
        return {"issue": "rx.issue", "dispense": "rx.dispense", "revoke": "rx.revoke"}[name.split("-")[1]]
    if domain == "sharing":
        return {
            "request": "share.request",
            "consent": "share.consent",
            "access": "share.access",
            "revoke-consent": "share.revoke_consent",
        }[name]
    if domain == "party":
        return "party.record"
    return "env.reading"


def good_samples() -> list[Path]:
    """Every golden sample that must be accepted (HJ 212 faults are named after their fault)."""
    out: list[Path] = []
    for domain in DOMAINS:
        for p in sorted((ASSETS / domain).iterdir()):
            if p.name == "expected.json" or p.suffix != (".txt" if domain == "hj212" else ".json"):
                continue
            if domain == "hj212" and (p.name.startswith(("crc-", "length-", "malformed-", "standard-"))):
                continue
            out.append(p)
    return out


def expected(domain: str) -> dict[str, Any]:
    """The pinned results (subject, digest, facts) of a domain's golden samples."""
    data: dict[str, Any] = json.loads((ASSETS / domain / "expected.json").read_text(encoding="utf-8"))
    return data


def _regenerate() -> None:
    from adapters import AdaptContext, adapt

    results: dict[str, dict[str, Any]] = {d: {} for d in DOMAINS}
    for p in good_samples():
        a = adapt(kind_of(p), p.read_bytes(), AdaptContext(pseudonym_key=PSEUDONYM_KEY))
        results[p.parent.name][p.name] = {
            "kind": a.kind,
            "subject": a.subject,
            "digest": a.digest,
            "facts": dict(a.facts),
        }
    for domain, table in results.items():
        text = json.dumps(table, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        (ASSETS / domain / "expected.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    _regenerate()
