"""The checks the sensor-batch tests (``env.batch``, ``gas.batch``) share: reading every page of a read,
one item's bundle verifying alone (SDK and CLI) and failing at step ``item`` once tampered, a refused batch
keeping nothing, ``provenance audit batches`` and the SDK's client settings."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters import adapt
from adapters.batch import BatchSpec
from gateway.models import Record, WorkflowState
from provenance.client import AsyncClient, Client
from provenance.errors import ProvenanceError, VerificationError
from provenance.log.bundle import EvidenceBundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verifier
from tests.kit.batches import cli_verify, count, submit_when_seen, verify_steps
from tests.kit.gateway import Harness, OrgClient, error_code, trust_path


def pages(client: OrgClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged read, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        r = client.get(path, params={**params, **({"after": after} if after else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        after = body["next_cursor"]
        if after is None:
            return items


def item_verifies(
    harness: Harness, client: OrgClient, url: str, document: Any, root: str, tmp: Path
) -> tuple[dict[str, Any], list[StepResult]]:
    """The bundle at ``url`` (one item of a batch: ``document``, under the signed ``root``) verifies alone,
    offline, against the pinned keys: the SDK (digest, payload, item passed; nothing failed) and the CLI.
    The bundle and the SDK's report."""
    one = client.get(url)
    assert one.status_code == 200, one.text
    bundle: dict[str, Any] = one.json()
    assert bundle["item"]["document"] == document and bundle["payload"]["root"] == root
    report = verify_steps(bundle, TrustStore.load(trust_path(harness.network)))
    assert [(s.step, s.status) for s in report][:3] == [
        ("digest", "passed"),
        ("payload", "passed"),
        ("item", "passed"),
    ]
    assert "failed" not in {s.status for s in report}, report
    code, out = cli_verify(bundle, trust_path(harness.network), tmp)
    assert code == 0 and out["verdict"] == "verified", out
    return bundle, report


def items_fail(harness: Harness, bad: Iterable[dict[str, Any]], tmp: Path) -> None:
    """Each bundle of ``bad`` (a tampered item, another item's proof) fails at step ``item`` with
    ITEM_PROOF_INVALID in the SDK; the first in the CLI too."""
    trust = trust_path(harness.network)
    bundles = list(bad)
    for b in bundles:
        with pytest.raises(VerificationError) as caught:
            verify_steps(b, TrustStore.load(trust))
        assert caught.value.step == "item" and caught.value.code == "ITEM_PROOF_INVALID"
    code, out = cli_verify(bundles[0], trust, tmp)
    assert code == 1 and out["failed_step"] == "item" and out["code"] == "ITEM_PROOF_INVALID", out


Refused = Callable[..., None]


def refusals(harness: Harness, client: OrgClient, spec: BatchSpec) -> Refused:
    """``refused(payload, code, status, who=client, **details)``: the batch ``payload`` of the domain's
    ``spec``, signed as its source would, is refused with ``code`` and HTTP ``status``, naming ``details``,
    and nothing of it is kept (no record, no state)."""

    def refused(
        payload: dict[str, Any], code: str, status: int, who: OrgClient = client, **details: Any
    ) -> None:
        before = (count(harness, Record), count(harness, WorkflowState))
        try:  # the digest a source signs: the head's (none when the batch does not adapt)
            digest: str = adapt(spec.kind, payload).digest
        except ProvenanceError:
            digest = "0" * 64
        subject = spec.source_key(payload[spec.source])
        body = who.body(spec.kind, payload, subject=subject, payload_digest=digest)
        r = who.post(body)
        assert r.status_code == status and error_code(r) == code, r.text
        for k, v in details.items():
            assert r.json()["error"]["details"][k] == v, r.text
        assert (count(harness, Record), count(harness, WorkflowState)) == before

    return refused


def audit_batches(harness: Harness, tmp: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``provenance audit batches`` as the auditor (chain, gateway, trust and manifest): the run and its
    JSON report."""
    token = tmp / "auditor.token"
    token.write_text(harness.tokens["auditor"], "utf-8")
    assert harness.network.path is not None
    cmd = [sys.executable, "-m", "provenance", "audit", "batches", "--rpc", harness.network.rpc_url]
    cmd += ["--gateway", harness.server.url, "--token-file", str(token)]
    cmd += ["--trust", str(trust_path(harness.network)), "--manifest", str(harness.network.path), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return done, json.loads(done.stdout)


def sdk_settings(harness: Harness, org: str) -> dict[str, Any]:
    """What ``Client``/``AsyncClient`` take to submit as ``org`` to the harness's gateway."""
    return {
        "base_url": harness.server.url,
        "token": harness.tokens[org],
        "org": org,
        "signer": harness.network.sm2_key(org),
        "trust": TrustStore.load(trust_path(harness.network)),
    }


def sdk_batches(
    harness: Harness, org: str, items: list[Any], start: datetime, cut: int, **source: str
) -> list[str]:
    """``items[1:cut]`` submitted with ``Client.submit_batch`` (period ``start`` + 1 s to + ``cut`` s) and
    ``items[cut:]`` with ``AsyncClient.submit_batch`` (on to + ``len(items)`` s), as ``org`` for the
    ``source`` (``mn=`` or ``logger=``); their record ids. Each reading's period second is its index."""
    settings = sdk_settings(harness, org)
    with Client(**settings) as client:
        receipt = client.submit_batch(
            items[1:cut],
            period_start=start + timedelta(seconds=1),
            period_end=start + timedelta(seconds=cut),
            **source,
        )

    async def submit_async() -> Any:
        async with AsyncClient(**settings) as client:
            return await client.submit_batch(
                items[cut:],
                period_start=start + timedelta(seconds=cut),
                period_end=start + timedelta(seconds=len(items)),
                **source,
            )

    return [receipt.id, asyncio.run(submit_async()).id]


def sdk_item_verifies(client: OrgClient, kind: str, rid: str, index: int, document: Any) -> None:
    """Once batch ``rid`` (of ``kind``) is anchored, its item ``index`` is ``document`` and its bundle
    from the gateway verifies with the SDK's verifier."""
    client.harness.wait_status(rid, "anchored", timeout=60)
    r = client.get(f"/api/v1/{kind.split('.')[0]}/batches/{rid}/readings/{index}/bundle")
    assert r.status_code == 200, r.text
    assert r.json()["item"]["document"] == document and r.json()["record"]["kind"] == kind
    trust = TrustStore.load(trust_path(client.harness.network))
    Verifier.offline(trust).verify(EvidenceBundle.from_dict(r.json()))


# Malformed page queries: instants not RFC 3339 UTC, limits out of 1 to 100, cursors not a next_cursor.
BAD_QUERIES = (
    {"since": "yesterday"},
    {"until": "today"},
    {"limit": 0},
    {"limit": 101},
    {"after": "somewhere"},
)


def bad_reads_refused(client: OrgClient, path: str, missing: str) -> None:
    """Each of ``BAD_QUERIES`` of the page read ``path`` is refused REQUEST_INVALID (422); the bundle of
    ``missing``, an item past the batch's last, READING_NOT_FOUND (404)."""
    for bad in BAD_QUERIES:
        r = client.get(path, params=bad)
        assert r.status_code == 422 and error_code(r) == "REQUEST_INVALID", r.text
    r = client.get(missing)
    assert r.status_code == 404 and error_code(r) == "READING_NOT_FOUND"


def readings(client: OrgClient, path: str, rid: str, **params: Any) -> list[dict[str, Any]]:
    """Every reading of the page read ``path`` (``params``: its range and page size), each of batch ``rid``
    with its own bundle."""
    found = pages(client, path, **params)
    assert all(it["batch"] == rid and it["bundle"]["item"]["index"] == it["index"] for it in found)
    return found


def unseen(client: OrgClient, path: str, bundle: str, **params: Any) -> None:
    """To a reader who may not read the batch its items do not exist: the page read ``path`` is empty,
    the item's ``bundle`` READING_NOT_FOUND."""
    r = client.get(path, params=params)
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    r = client.get(bundle)
    assert r.status_code == 404 and error_code(r) == "READING_NOT_FOUND"


def anchored(client: OrgClient, spec: BatchSpec, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The batch ``payload`` of the domain's ``spec``, submitted once the gateway has seen its source,
    accepted (202) and anchored, one record of its kind and source: its id and record."""
    r = submit_when_seen(client, spec.kind, payload)
    assert r.status_code == 202, r.text
    rid: str = r.json()["id"]
    record: dict[str, Any] = client.harness.wait_status(rid, "anchored", timeout=60)
    assert record["kind"] == spec.kind and record["subject"] == spec.source_key(payload[spec.source])
    return rid, record


def periods() -> tuple[datetime, datetime, datetime]:
    """``first, start, end``: a source's first batch period, from 100 s ago for 20 s, then the period the
    test batches take, 40 s from there (whole seconds, so the heads name them exactly)."""
    first = (datetime.now(UTC) - timedelta(seconds=100)).replace(microsecond=0)
    start = first + timedelta(seconds=20)
    return first, start, start + timedelta(seconds=40)
