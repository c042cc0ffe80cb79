"""The trust file and the kind -> roles table: docs/formats.md, the schema both verifiers read, and the code
name the same fields (issue 25, finding 3), and a trust file that is not exactly that format does not load."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import KINDS
from provenance._internal.schema import inline_refs, load_schema
from provenance.kinds import ROLES_BY_KIND
from provenance.records import _SUBJECT_RE
from provenance.verification.trust import TrustInvalid, TrustStore

ROOT = Path(__file__).resolve().parents[2]
FORMATS = (ROOT / "docs" / "formats.md").read_text("utf-8")
BUNDLES = ROOT / "tests" / "assets" / "bundles"


def _section(title: str) -> str:
    start = FORMATS.index(f"### {title}")
    end = FORMATS.find("\n### ", start + 1)
    return FORMATS[start : end if end > 0 else None]


def _table_first_column(section: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def _schema_fields(node: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        out.append(path)
        if sub.get("type") == "array":
            out += _schema_fields(sub["items"], f"{path}[].")
        elif sub.get("type") == "object":
            out += _schema_fields(sub, f"{path}.")
    return out


def test_formats_md_names_every_trust_file_field_of_the_schema() -> None:
    schema = load_schema("trust.schema.json")
    fields = _schema_fields(inline_refs(schema, schema["$defs"]))
    documented = _table_first_column(_section("Trust file"))
    assert documented == fields, "docs/formats.md's trust file table and trust.schema.json differ"


def test_the_exported_form_is_the_documented_form() -> None:
    """What the code writes (``TrustStore.to_dict``) loads back, field for field, through the schema."""
    store = TrustStore.load(BUNDLES / "trust.json")
    doc = store.to_dict()
    again = TrustStore.from_dict(json.loads(json.dumps(doc)))
    assert again.to_dict() == doc
    assert (
        doc["chain"]["provenance_log"] == store.provenance_log and store.chain_id == doc["chain"]["chain_id"]
    )
    assert [k.origin for k in again.logs] == [k.origin for k in store.logs]


def test_formats_md_kind_table_is_the_one_the_verifiers_and_gateway_read() -> None:
    rows = re.findall(
        r"^\| `([a-z_.]+)` \| (`.+`) \|$", _section("Who may record which kind"), flags=re.MULTILINE
    )
    documented = {kind: {r.strip("` ") for r in roles.split(",")} for kind, roles in rows}
    assert documented == {kind: {r.name.lower() for r in roles} for kind, roles in ROLES_BY_KIND.items()}
    assert set(ROLES_BY_KIND) == set(KINDS), "every record kind with an adapter has its roles, and no other"


def test_the_envelope_subject_rule_is_the_schemas() -> None:
    schema = load_schema("evidence-bundle.schema.json")
    # The Python pattern is matched whole (fullmatch); the schema's, an ECMA 262 regex, carries the anchors.
    assert f"^{_SUBJECT_RE.pattern}$" == schema["properties"]["record"]["properties"]["subject"]["pattern"]


def _trust() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((BUNDLES / "trust.json").read_text("utf-8"))
    return doc


@pytest.mark.parametrize(
    ("change", "where"),
    [
        # The name the CLI read before issue 25 while the docs said provenance_log: refused, not ignored.
        (lambda d: d["chain"].update(log_contract=d["chain"].pop("provenance_log")), "chain"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["chain"].update(chain_id=20260.0), "chain/chain_id"),
        (lambda d: d["logs"][0].pop("origin"), "logs/0"),
        (lambda d: d["orgs"][0].update(constructor="x"), "orgs/0"),
        (lambda d: d["orgs"][0]["keys"][0].update(valid_from="2026-1-1"), "orgs/0/keys/0/valid_from"),
        (lambda d: d.update(witnesses=[]), "witnesses"),
        (lambda d: d.update(witness=[]), "(top level)"),
    ],
)
def test_a_trust_file_not_of_the_format_does_not_load(change: Any, where: str) -> None:
    doc = _trust()
    change(doc)
    with pytest.raises(TrustInvalid) as info:
        TrustStore.from_dict(doc)
    assert info.value.code == "TRUST_INVALID" and info.value.details["path"] == where


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (lambda t: t.replace('"version": 1,', '"version": 1, "version": 1,', 1), "duplicate key"),
        (lambda t: "\ufeff" + t, "byte order mark"),
        (lambda t: t.replace('"hosp-1"', '"pharm-1"', 1), "twice"),
        (lambda t: t.replace("2026-01-01T00:00:00Z", "2026-02-30T00:00:00Z", 1), "not a valid date-time"),
    ],
)
def test_a_trust_file_that_reads_two_ways_does_not_load(tmp_path: Path, text: Any, why: str) -> None:
    path = tmp_path / "trust.json"
    path.write_text(text((BUNDLES / "trust.json").read_text("utf-8")), "utf-8")
    with pytest.raises(TrustInvalid, match=why):
        TrustStore.load(path)
