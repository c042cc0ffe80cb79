"""schemathesis against the gateway's own OpenAPI (/openapi.json), with a valid token: no 5xx, and every
response conforms to what the schema documents for it (body schema, content type, status code).

Bounded: ``EXAMPLES`` generated cases per operation and generation mode (schema-valid and schema-invalid).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.kit.gateway import Harness, accepted_since, check_accepted
from tests.security.fuzzing import fuzz_settings

EXAMPLES = 40
INT64_MAX = 2**63 - 1


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _fuzz(harness: Harness, operation: Any, mode: GenerationMode, checks: list[Any], tally: Tally) -> None:
    name = f"{operation.method.upper()} {operation.path}"
    headers = {"Authorization": f"Bearer {harness.tokens['hospital-1']}"}

    @fuzz_settings(EXAMPLES)
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Any) -> None:
        tally.cases += 1
        response = case.call(base_url=harness.server.url, headers=headers, timeout=30)
        tally.statuses[f"{name} {response.status_code}"] += 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:  # schemathesis' failure group: one line per check that failed
            first = str(exc).strip().splitlines()[0][:160]
            tally.failures.append(f"{name} {case.query or ''} -> {response.status_code}: {first}")

    try:
        fuzz()
    except Unsatisfiable:
        # No parameters and no body (GET /healthz ...): nothing schema-invalid can be generated.
        assert mode == GenerationMode.NEGATIVE, name


def _run(harness: Harness, checks: list[Any]) -> Tally:
    schema = schemathesis.openapi.from_url(f"{harness.server.url}/openapi.json")
    tally = Tally()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the gateway's OpenAPI has an invalid operation: {result.err()}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(harness, result.ok(), mode, checks, tally)
    return tally


def test_no_server_error_and_bodies_match_the_schema(harness: Harness) -> None:
    started = time.time()
    tally = _run(harness, [not_a_server_error, response_schema_conformance, content_type_conformance])
    print(f"\n[schemathesis {schemathesis.__version__}] {tally.cases} cases")
    print(f"statuses: {dict(sorted(tally.statuses.items()))}")
    assert tally.cases > 100
    assert not tally.failures, "\n".join(sorted(set(tally.failures))[:30])
    check_accepted(harness, accepted_since(harness, started))  # whatever got a 202 keeps its promise


def test_every_status_the_gateway_answers_is_documented(harness: Harness) -> None:
    """Clients generated from /openapi.json must know the error body the gateway really sends."""
    started = time.time()
    tally = _run(harness, [status_code_conformance])
    assert not tally.failures, "\n".join(sorted(set(tally.failures))[:30])
    check_accepted(harness, accepted_since(harness, started))


def test_subject_cursor_beyond_int64(harness: Harness) -> None:
    """Found by the fuzzing above: the pagination cursor is an unbounded int handed to the database."""
    r = harness.client("auditor").get("/api/v1/subjects/rx:X/records", params={"after": INT64_MAX + 1})
    assert r.status_code in (400, 422), r.text
