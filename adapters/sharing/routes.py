"""The sharing domain's reads: a dataset's lineage (``GET /api/v1/datasets/{dataset}/lineage``: the datasets
it was derived from and those derived from it) and a settlement's standing (``GET
/api/v1/settlements/{settlement_id}``: pending until the counterpart countersigns)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from adapters._common import OVERSIGHT_ROLES
from adapters.abc import ReadContext, Route, State
from adapters.sharing.domain import dataset_key, settlement_key
from adapters.sharing.errors import DatasetUnknown, SettlementUnknown

MAX_NODES = 500  # a lineage read walks at most this many datasets each way


class LineageNode(BaseModel):
    dataset: str
    depth: int  # 1: a direct input (ancestors) or output (descendants)
    status: str  # collected | derived | registered (on chain only, no record of its collection here)
    owner: str
    record: str | None  # the data.collected or data.derived record that made it (its id)
    inputs: list[str]


class Lineage(BaseModel):
    dataset: str
    status: str
    owner: str
    record: str | None
    inputs: list[str]
    ancestors: list[LineageNode]
    descendants: list[LineageNode]
    truncated: bool


def _sees(ctx: ReadContext, dataset: str) -> bool:
    """A reader sees a dataset in a lineage when it sees some record of it (its read policy)."""
    return bool(ctx.records(f"dataset:{dataset}", limit=1))


def _origin(state: State) -> str | None:
    record = state.data.get("collected") or state.data.get("derived")
    return str(record) if record is not None else None


def _walk(ctx: ReadContext, start: State, edge: str, owner: bool) -> tuple[list[LineageNode], bool]:
    """Breadth first along ``edge`` (inputs or outputs), each dataset once; unless the reader owns the
    dataset read (``owner``), those it does not see are left out, and so is what lies beyond them."""
    seen: set[str] = set()
    frontier = [(str(name), 1) for name in start.data.get(edge, [])]
    nodes: list[LineageNode] = []
    while frontier:
        name, depth = frontier.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if len(nodes) >= MAX_NODES:
            return nodes, True
        state = ctx.state(dataset_key(name))
        if state is None or not (owner or _sees(ctx, name)):
            continue
        nodes.append(
            LineageNode(
                dataset=name,
                depth=depth,
                status=state.status,
                owner=str(state.data["owner"]),
                record=_origin(state),
                inputs=[str(i) for i in state.data.get("inputs", [])],
            )
        )
        frontier.extend((str(n), depth + 1) for n in state.data.get(edge, []))
    return nodes, False


def lineage(ctx: ReadContext, dataset: str) -> Lineage:
    """A dataset's upstream and downstream datasets, all of them for its owner, for anyone else as far as
    it sees them (DATASET_UNKNOWN, 404,
    alike for a dataset with no lineage here and one the reader sees nothing of)."""
    state = ctx.state(dataset_key(dataset))  # found whatever the case it is asked in
    dataset = str(state.data.get("dataset", dataset)) if state is not None else dataset  # as made
    if state is None or not _sees(ctx, dataset):
        raise DatasetUnknown(f"no lineage of dataset {dataset!r}", details={"dataset": dataset})
    # Its owner reads its whole lineage (names, owners, record ids; the records themselves by the read
    # policy): what its data was derived into, or, for an analyst, what it named as its inputs.
    owner = ctx.org == state.data["owner"]
    ancestors, cut_up = _walk(ctx, state, "inputs", owner)
    descendants, cut_down = _walk(ctx, state, "outputs", owner)
    return Lineage(
        dataset=dataset,
        status=state.status,
        owner=str(state.data["owner"]),
        record=_origin(state),
        inputs=[str(i) for i in state.data.get("inputs", [])],
        ancestors=ancestors,
        descendants=descendants,
        truncated=cut_up or cut_down,
    )


class Settlement(BaseModel):
    settlement_id: str
    status: str  # pending | settled
    request_id: str
    dataset: str
    proposer: str
    counterpart: str
    amount: int
    # Its terms, which the counterpart countersigns (None: a settlement recorded before they were kept).
    period_start: str | None = None
    period_end: str | None = None
    access_count: int | None = None
    unit_price: int | None = None
    record: str  # the data.settled record
    countersigned: str | None  # the data.countersigned record, once there


def settlement(ctx: ReadContext, settlement_id: str) -> Settlement:
    """A settlement's standing, for its two sides, auditors and regulators (SETTLEMENT_UNKNOWN, 404, to
    anyone else: another user of the dataset sees the record's envelope, never the price)."""
    state = ctx.state(settlement_key(settlement_id))
    sides = (state.data["proposer"], state.data["counterpart"]) if state is not None else ()
    if state is None or (ctx.org not in sides and ctx.role not in OVERSIGHT_ROLES):
        raise SettlementUnknown(f"no settlement {settlement_id!r}", details={"settlement_id": settlement_id})
    data = state.data
    return Settlement(
        settlement_id=str(data.get("settlement_id", settlement_id)),  # as made (looked up without case)
        status=state.status,
        request_id=str(data["request_id"]),
        dataset=str(data["dataset"]),
        proposer=str(data["proposer"]),
        counterpart=str(data["counterpart"]),
        amount=int(data["amount"]),
        period_start=data.get("period_start"),
        period_end=data.get("period_end"),
        access_count=data.get("access_count"),
        unit_price=data.get("unit_price"),
        record=str(data["record"]),
        countersigned=data.get("countersigned"),
    )


# --- the lineage as W3C PROV-JSON (https://www.w3.org/Submission/prov-json/) -----------------------------

PREFIX = {"prov": "http://www.w3.org/ns/prov#", "sc": "urn:shancheng:"}
Statements = dict[str, dict[str, Any]]


class ProvDocument(BaseModel):
    """A PROV-JSON document: datasets are entities, the records that made them (collected, derived)
    activities, organisations agents; every activity names its record id (``sc:record``), whose bundle
    verifies the edge offline."""

    prefix: dict[str, str]
    entity: Statements
    activity: Statements
    agent: Statements
    wasGeneratedBy: Statements  # PROV-JSON's member names
    used: Statements
    wasDerivedFrom: Statements
    wasAttributedTo: Statements
    wasAssociatedWith: Statements


def lineage_prov(ctx: ReadContext, dataset: str) -> ProvDocument:
    """The dataset's lineage (as :func:`lineage` reads it for this reader) in PROV-JSON."""
    view = lineage(ctx, dataset)
    root = LineageNode(
        dataset=view.dataset,
        depth=0,
        status=view.status,
        owner=view.owner,
        record=view.record,
        inputs=view.inputs,
    )
    nodes = [root, *view.ancestors, *view.descendants]
    shown = {n.dataset for n in nodes}
    doc: dict[str, Statements] = {k: {} for k in ProvDocument.model_fields if k != "prefix"}
    for node in nodes:
        entity, agent = f"sc:dataset/{node.dataset}", f"sc:org/{node.owner}"
        doc["entity"][entity] = {"prov:type": "sc:Dataset", "sc:status": node.status}
        doc["agent"][agent] = {"prov:type": "prov:Organization"}
        attribution = {"prov:entity": entity, "prov:agent": agent}
        if node.record is None:  # registered on chain only: no record made it
            doc["wasAttributedTo"][f"_:attr/{node.dataset}"] = attribution
            continue
        # Every statement a record backs names it (sc:record): its bundle verifies the edge offline.
        backed = {"sc:record": node.record}
        doc["wasAttributedTo"][f"_:attr/{node.dataset}"] = {**attribution, **backed}
        activity = f"sc:record/{node.record}"
        kind = "data.derived" if node.inputs else "data.collected"
        doc["activity"][activity] = {"prov:type": f"sc:{kind}", **backed}
        generation = {"prov:entity": entity, "prov:activity": activity, **backed}
        doc["wasGeneratedBy"][f"_:gen/{node.dataset}"] = generation
        association = {"prov:activity": activity, "prov:agent": agent, **backed}
        doc["wasAssociatedWith"][f"_:assoc/{node.record}"] = association
        for source in node.inputs:
            if source not in shown:
                continue
            used = f"sc:dataset/{source}"
            usage = {"prov:activity": activity, "prov:entity": used, **backed}
            doc["used"][f"_:use/{node.record}/{source}"] = usage
            doc["wasDerivedFrom"][f"_:der/{node.dataset}/{source}"] = {
                "prov:generatedEntity": entity,
                "prov:usedEntity": used,
                "prov:activity": activity,
                **backed,
            }
    return ProvDocument(prefix=PREFIX, **doc)


_HANDLERS: tuple[tuple[str, Callable[..., BaseModel], type[BaseModel]], ...] = (
    ("/datasets/{dataset}/lineage", lineage, Lineage),
    ("/datasets/{dataset}/lineage/prov", lineage_prov, ProvDocument),
    ("/settlements/{settlement_id}", settlement, Settlement),
)
ROUTES = tuple(Route(path, handler, model, tags=("sharing",)) for path, handler, model in _HANDLERS)
