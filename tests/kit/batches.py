"""Helpers of the sensor-batch tests (``env.batch``, ``gas.batch``): submitting once the gateway has seen a
source's registration, counting rows, verifying one item's bundle with the SDK and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import func, select

from adapters.env.batch import SPEC as ENV
from adapters.gas.batch import SPEC as GAS
from gateway.core.db import Database
from provenance.log.bundle import EvidenceBundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verifier
from tests.kit.gateway import Harness, OrgClient, error_code


def submit_when_seen(client: OrgClient, kind: str, payload: dict[str, Any]) -> httpx.Response:
    """Submit once the gateway has seen the source's registration (its registry watcher polls): until then
    the domain's code of an unknown source (404: STATION_UNKNOWN, LOGGER_UNKNOWN)."""
    unknown = {spec.kind: spec.errors[0].code for spec in (ENV, GAS)}[kind]
    body = client.body(kind, payload)

    def sent() -> httpx.Response | None:
        r = client.post(body)
        return None if r.status_code == 404 and error_code(r) == unknown else r

    result: httpx.Response = client.harness.wait(sent, timeout=20, what="source registered")
    return result


def count(harness: Harness, model: Any, *conds: Any) -> int:
    """Rows of ``model`` in the gateway's database (matching ``conds``)."""
    db = Database(harness.settings.database_url)
    try:
        with db.session() as s:
            return int(s.exec(select(func.count()).select_from(model).where(*conds)).one())
    finally:
        db.dispose()


def verify_steps(bundle: dict[str, Any], trust: TrustStore) -> list[StepResult]:
    """The SDK's offline verification of ``bundle``, step by step (raises at the first step that fails)."""
    report: list[StepResult] = []
    Verifier.offline(trust).verify(EvidenceBundle.from_dict(bundle), report=report)
    return report


def cli_verify(bundle: dict[str, Any], trust: Path, tmp: Path, *options: str) -> tuple[int, dict[str, Any]]:
    """``provenance verify <bundle> --trust <trust> --json [options]``: its exit code and report."""
    path = tmp / "item-bundle.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False), "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "provenance", "verify", str(path), "--trust", str(trust), "--json", *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout)
