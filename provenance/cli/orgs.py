"""``provenance orgs export``: a trust file read from the chain (``OrgRegistry``, ``ProvenanceLog``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provenance.cli._app import ChainRpc, command_group, gateway_trust, out, reaching, shown
from provenance.errors import FormatError
from provenance.files import write_public

orgs_app = command_group("orgs", "Organisations in OrgRegistry.")


@orgs_app.command("export")
def orgs_export(
    rpc: ChainRpc,
    registry: Annotated[str, typer.Option("--registry", help="OrgRegistry address.")],
    out_path: Annotated[Path, typer.Option("--out", help="Trust file to write.")],
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", help="Gateway URL: the log's contract and an anchored checkpoint note."),
    ] = None,
    log_contract: Annotated[
        str | None, typer.Option("--log-contract", help="ProvenanceLog address (default: the gateway's).")
    ] = None,
    log_key_name: Annotated[
        str | None, typer.Option("--log-key-name", help="The log key's name (default: read, checked).")
    ] = None,
    log_origin: Annotated[
        str | None, typer.Option("--log-origin", help="The log's origin (default: read, checked).")
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="ORG=VKEY: a witness run by ORG (its key must be registered to ORG)."),
    ] = None,
    witness_quorum: Annotated[
        int, typer.Option("--witness-quorum", help="Cosignatures a checkpoint needs (default: a majority).")
    ] = 0,
) -> None:
    """Write a trust file pinning everything a verifier needs, from the chain: organisations, roles, SM2 key
    windows (OrgRegistry), the log's keys, name and origin, the chain id and the contracts."""
    from provenance.chain.connect import connect
    from provenance.chain.registry import ExportInvalid, read_trust, witness_policy
    from provenance.client import Api, Client

    with reaching(rpc=rpc, gateway=gateway):
        if gateway is not None:
            with Client(base_url=gateway) as client:
                contract = log_contract or _served_log_contract(gateway)
                store = read_trust(
                    connect(rpc),
                    registry,
                    provenance_log=contract,
                    note_for=lambda size: Api.note(client.checkpoint(size)),
                    log_key_name=log_key_name,
                    log_origin=log_origin,
                    rpc_url=rpc,
                )
        elif log_contract is None:
            raise ExportInvalid("pass --gateway, or --log-contract with --log-key-name and --log-origin")
        else:
            store = read_trust(
                connect(rpc),
                registry,
                provenance_log=log_contract,
                log_key_name=log_key_name,
                log_origin=log_origin,
                rpc_url=rpc,
            )
    if witness:
        pairs = [(org, vkey) for org, _, vkey in (w.partition("=") for w in witness)]
        if any(not org or not vkey for org, vkey in pairs):
            raise FormatError("--witness takes ORG=VKEY (the witness's verifier key string)")
        store.witnesses = witness_policy(store, pairs, witness_quorum or len(pairs) // 2 + 1)
    write_public(out_path, (json.dumps(store.to_dict(), ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    log = store.logs[0]
    out.print(
        f"wrote {shown(out_path)}: {len(store.orgs)} organisations, {len(store.logs)} log keys "
        f"('{shown(log.name)}', origin '{shown(log.origin)}'), ProvenanceLog {shown(store.provenance_log)} "
        f"on chain {store.chain_id}"
    )


def _served_log_contract(gateway: str) -> str:
    """The ProvenanceLog address the gateway names (checked on chain by ``read_trust``, not trusted)."""
    chain = gateway_trust(gateway).chain
    contract = chain.get("provenance_log")
    if not isinstance(contract, str):
        raise FormatError("the gateway's /api/v1/orgs names no chain.provenance_log: pass --log-contract")
    return contract
