"""A domain registered from a test, without touching ``gateway/``: its own kinds and roles, one rule with
its own error code, a read route, no contract. Through the real gateway: submit → 202 → logged → the bundle
verifies with the kind → roles table ``provenance orgs export`` writes once the domain is installed (and
fails the role step without it); the rule's violation answers with the domain's code, in single and bulk
submissions; the route answers from the domain's state."""

from __future__ import annotations

import dataclasses
import secrets
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from adapters import (
    AdaptContext,
    AdaptedPayload,
    ChainView,
    ContractCall,
    Panel,
    PanelCount,
    PanelItem,
    Payload,
    Provision,
    ReadContext,
    RecordFacts,
    Route,
    SetupCall,
    State,
    Step,
    SupervisionContext,
    adapted,
    domain_policy,
    load_json_object,
    registry,
)
from adapters.abc import DemoWriter, Workflow
from provenance.chain.contracts import ContractReverted
from provenance.domains import DomainSpec, kind_roles
from provenance.errors import Conflict, NotFound, PayloadInvalid, SignerRoleForbidden
from provenance.log.bundle import EvidenceBundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit.gateway import Harness, error_code, trust_path, workerless_gateway

SAMPLE, RESULT = "lab.sample", "lab.result"


class SampleUnknown(NotFound):
    code = "LAB_SAMPLE_UNKNOWN"


class SampleReported(Conflict):
    code = "LAB_SAMPLE_REPORTED"


class SampleView(BaseModel):
    sample_id: str
    status: str
    taken_by: str | None


def sample_view(ctx: ReadContext, sample_id: str, fields: str | None) -> SampleView:
    """A sample's state, as the lab domain reads it (``?fields=status``: without who took it)."""
    state = ctx.state(f"sample:{sample_id}")
    if state is None:
        raise SampleUnknown(f"no sample {sample_id!r}", details={"sample_id": sample_id})
    taken_by = None if fields == "status" else str(state.data["taken_by"])
    return SampleView(sample_id=sample_id, status=state.status, taken_by=taken_by)


class SampleRecords(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: int | None


def sample_records(ctx: ReadContext, sample_id: str, after: str | None) -> SampleRecords:
    """A sample's records the reader sees, a page of two at a time (``?after=`` the last page's cursor)."""
    listed = ctx.records(f"lab:{sample_id}", after=int(after or 0), limit=2)
    items = [
        {"id": i.record.record_id, "kind": i.record.kind, "org": i.record.org, "facts": dict(i.record.facts)}
        for i in listed
    ]
    return SampleRecords(items=items, next_cursor=listed[-1].seq if len(listed) == 2 else None)


def reported_again(ctx: SupervisionContext, since: str, until: str) -> list[PanelCount]:
    """Results refused because the sample was reported already, per hospital (the dashboard's panel)."""
    orgs = Counter(r.org for r in ctx.refusals(SampleReported.code) if since <= r.at < until)
    return [PanelCount(org, n) for org, n in orgs.most_common()]


def reported_again_items(
    ctx: SupervisionContext, key: str, since: str, until: str, after: str | None, limit: int
) -> tuple[list[PanelItem], str | None]:
    """Behind each: the result that reported the sample first."""
    found = [r for r in ctx.refusals(SampleReported.code) if r.org == key and since <= r.at < until]
    items = []
    for r in found[:limit]:
        state = ctx.state(f"sample:{r.details['sample_id']}")
        first = state.data.get("result") if state is not None else None
        items.append(PanelItem(first, r.at, r.org, r.subject, f"{r.kind} {r.details['sample_id']}"))
    return items, None


class LabWorkflow:
    """Samples taken by a hospital, each reported once, after it was taken."""

    kinds: tuple[str, ...] = (SAMPLE, RESULT)
    read_policy = domain_policy(kinds)
    domain = DomainSpec(name="lab", roles={SAMPLE: frozenset({"hospital"}), RESULT: frozenset({"hospital"})})
    contracts: tuple[str, ...] = ()  # no contract: the rules are the domain's alone
    watched: tuple[str, ...] = ()
    routes: Sequence[Route] = (
        Route("/lab/samples/{sample_id}", sample_view, SampleView, query=("fields",)),
        Route("/lab/samples/{sample_id}/records", sample_records, SampleRecords, query=("after",)),
    )
    panels: Sequence[Panel] = (
        Panel(
            name="reported_again",
            title={"zh": "重复报告", "en": "Samples reported again"},
            key_title={"zh": "医院", "en": "Hospital"},
            counts=reported_again,
            items=reported_again_items,
        ),
    )

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        return ()

    def demo(self, writer: DemoWriter) -> str | None:
        return None  # no demo records

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        obj = load_json_object(payload)
        sample = obj.get("sample_id")
        if not isinstance(sample, str) or not sample.isalnum():
            raise PayloadInvalid("sample_id must be letters and digits", details={"field": "sample_id"})
        return adapted(kind, f"lab:{sample}", obj, {"sample_id": sample})

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"sample:{facts['sample_id']}",)

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        sample = str(record.facts["sample_id"])
        key = f"sample:{sample}"
        state = states[key]
        if record.kind == SAMPLE:
            if state is not None:
                raise SampleReported(f"sample {sample!r} was taken already", details={"sample_id": sample})
            return Step(writes={key: State("taken", {"taken_by": record.org})})
        if state is None:
            raise SampleUnknown(f"no sample {sample!r}", details={"sample_id": sample})
        if state.status != "taken":
            raise SampleReported(f"sample {sample!r} was reported already", details={"sample_id": sample})
        return Step(writes={key: State("reported", {**state.data, "result": record.record_id})})

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        return None

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        return False


@pytest.fixture
def lab() -> Iterator[Workflow]:
    workflow = LabWorkflow()
    assert isinstance(workflow, Workflow)
    registry.register(workflow)
    try:
        yield workflow
    finally:
        registry.unregister(workflow)


def test_a_domain_registered_from_a_test_goes_end_to_end(harness: Harness, lab: Workflow) -> None:
    hospital = harness.client("hospital-1")
    sample = "S" + secrets.token_hex(6)
    # Before the sample is taken, its result breaks the domain's rule: the domain's code, nothing kept.
    early = hospital.submit(RESULT, {"sample_id": sample, "value": 4.2})
    assert (early.status_code, error_code(early)) == (404, "LAB_SAMPLE_UNKNOWN")
    # Only the roles the domain declares record its kinds.
    pharmacy = harness.client("pharmacy-1").submit(SAMPLE, {"sample_id": sample})
    assert (pharmacy.status_code, error_code(pharmacy)) == (403, "ROLE_FORBIDDEN")
    taken = hospital.submit(SAMPLE, {"sample_id": sample})
    assert taken.status_code == 202, taken.text
    # In one bulk request, items are decided in order: the result follows the taking, the second result
    # meets the reported state.
    bulk = harness.http.post(
        "/api/v1/records:bulk",
        json={
            "records": [
                hospital.body(RESULT, {"sample_id": sample, "value": 4.2}),
                hospital.body(RESULT, {"sample_id": sample, "value": 4.3}),
            ]
        },
        headers=hospital.headers,
    )
    assert bulk.status_code == 200, bulk.text
    items = bulk.json()["items"]
    assert [i["status"] for i in items] == ["accepted", "rejected"], items
    assert items[1]["error"]["code"] == "LAB_SAMPLE_REPORTED", items
    # The domain's own panel on the supervision dashboard: the refused result, and behind it the first.
    regulator = harness.client("regulator")
    panels = regulator.get("/api/v1/dashboard/summary", params={"days": 1}).json()["panels"]
    (panel,) = [p for p in panels if p["domain"] == "lab"]
    assert panel["name"] == "reported_again" and panel["title"]["en"] == "Samples reported again"
    assert {c["key"]: c["count"] for c in panel["counts"]}["hospital-1"] >= 1
    behind = regulator.get(
        "/api/v1/dashboard/panels/lab/reported_again", params={"key": "hospital-1", "days": 1}
    ).json()["items"]
    assert [i["record_id"] for i in behind if i["detail"] == f"{RESULT} {sample}"] == [items[0]["id"]]
    # The trust file the deploy wrote knows the built-in domains only; `provenance orgs export` with the lab
    # domain installed writes its kinds too (kind_roles of the installed domains).
    deployed = TrustStore.load(trust_path(harness.network))
    assert not deployed.may_record("hospital", SAMPLE)
    kinds = kind_roles(registry.domains())
    assert kinds[SAMPLE] == kinds[RESULT] == frozenset({"hospital"})
    installed = dataclasses.replace(deployed, kinds=kinds)
    for rid in (taken.json()["id"], items[0]["id"]):
        record = harness.wait_status(rid)
        assert record["chain_status"] == "none"  # the domain makes no contract call
        bundle = EvidenceBundle.from_dict(hospital.get(f"/api/v1/records/{rid}/bundle").json())
        with pytest.raises(SignerRoleForbidden):
            Verifier(trust=deployed).verify(bundle)
        Verifier(trust=installed).verify(bundle)


def test_a_registered_domain_s_route_is_mounted(harness: Harness, lab: Workflow, tmp_path: Path) -> None:
    """Routes are mounted when the app is made: a gateway started after the domain registered serves them
    under /api/v1, with the domain's errors through the one handler."""
    sample = "S" + secrets.token_hex(6)
    hospital = harness.client("hospital-1")
    with workerless_gateway(harness, tmp_path, "hospital-1") as (_, http):
        missing = http.get(f"/api/v1/lab/samples/{sample}")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "LAB_SAMPLE_UNKNOWN")
        r = http.post("/api/v1/records", json=hospital.body(SAMPLE, {"sample_id": sample}))
        assert r.status_code == 202, r.text
        found = http.get(f"/api/v1/lab/samples/{sample}")
        assert found.status_code == 200, found.text
        assert found.json() == {"sample_id": sample, "status": "taken", "taken_by": "hospital-1"}
        short = http.get(f"/api/v1/lab/samples/{sample}", params={"fields": "status"})
        assert short.json() == {"sample_id": sample, "status": "taken", "taken_by": None}
        too_long = http.get(f"/api/v1/lab/samples/{sample}", params={"fields": "x" * 201})
        assert (too_long.status_code, too_long.json()["error"]["code"]) == (422, "REQUEST_INVALID")
        result = http.post("/api/v1/records", json=hospital.body(RESULT, {"sample_id": sample, "value": 1.5}))
        assert result.status_code == 202, result.text
        page = http.get(f"/api/v1/lab/samples/{sample}/records").json()
        assert [(i["id"], i["kind"]) for i in page["items"]] == [
            (r.json()["id"], SAMPLE),
            (result.json()["id"], RESULT),
        ]
        assert page["items"][1]["facts"] == {"sample_id": sample}  # the signer reads its payload's facts
        rest = http.get(f"/api/v1/lab/samples/{sample}/records", params={"after": page["next_cursor"]})
        assert rest.json() == {"items": [], "next_cursor": None}
    # Unregistered, the domain's kinds are unknown again (the registry is read afresh).
    other = {"sample_id": sample + "X"}
    done = lab.adapt(SAMPLE, other)
    registry.unregister(lab)
    try:
        gone = hospital.submit(SAMPLE, other, subject=done.subject, payload_digest=done.digest)
        assert (gone.status_code, error_code(gone)) == (400, "KIND_UNKNOWN")
    finally:
        registry.register(lab)
