"""The log: checkpoints (signed notes, with their anchors) and consistency proofs. Public."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlmodel import col, select

from gateway.api.deps import GatewayDep, SessionDep
from gateway.errors import NotYetLogged
from gateway.models import CheckpointPublic, CheckpointRow
from gateway.services.reads import checkpoint_public, consistency
from gateway.services.witnessing import cosignatures
from provenance.domains import kinds_document
from provenance.errors import NotFound

router = APIRouter(tags=["log"])


@router.get("/chain")
def chain(gw: GatewayDep) -> dict[str, Any]:
    """Where the log is anchored and its keys registered, for the /verify page's own chain lookups: the
    node's JSON-RPC URL (a suggestion the page shows and the user may change), the chain id and contract
    addresses, and the record kinds each role may record (the trust file's ``kinds``)."""
    ledger = gw.ledger
    return {
        "rpc_url": gw.settings.public_rpc_url or ledger.rpc_url,
        "chain_id": ledger.chain_id,
        "provenance_log": gw.log_contract,
        "org_registry": ledger.registry.address,
        "kinds": kinds_document(),
    }


@router.get("/checkpoints/latest", response_model=CheckpointPublic)
def latest_checkpoint(gw: GatewayDep, session: SessionDep) -> CheckpointPublic:
    """The newest signed checkpoint."""
    row = session.exec(select(CheckpointRow).order_by(col(CheckpointRow.size).desc()).limit(1)).first()
    if row is None:
        raise NotYetLogged("no checkpoint has been signed yet")
    return checkpoint_public(
        row, chain_id=gw.ledger.chain_id, contract=gw.log_contract, cosigned=cosignatures(session, row.size)
    )


@router.get("/checkpoints/{size}", response_model=CheckpointPublic)
def checkpoint_at(
    size: Annotated[int, Path(ge=0, le=2**63 - 1)], gw: GatewayDep, session: SessionDep
) -> CheckpointPublic:
    """The checkpoint signed for tree size ``size``."""
    row = session.get(CheckpointRow, size)
    if row is None:
        raise NotFound(f"no checkpoint of size {size}", details={"size": size})
    return checkpoint_public(
        row, chain_id=gw.ledger.chain_id, contract=gw.log_contract, cosigned=cosignatures(session, row.size)
    )


@router.get("/proofs/consistency")
def consistency_proof(
    session: SessionDep,
    first: Annotated[int, Query(ge=0, le=2**63 - 1)],
    second: Annotated[int, Query(ge=0, le=2**63 - 1)],
) -> dict[str, Any]:
    """RFC 9162 consistency proof from tree size ``first`` to ``second`` (base64 SM3 hashes)."""
    return consistency(session, first, second)
