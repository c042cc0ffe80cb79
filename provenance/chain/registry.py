"""A trust file from the chain itself: ``OrgRegistry``'s organisations, roles and SM2 key windows, the
log a verifier must hold bundles to (``ProvenanceLog``'s address, the log's key name and origin), and the
chain's sealing keys where its node seals blocks with SM2 (``gm_validators``).

The log's key name and origin are not on chain; they are read from a checkpoint the chain anchored (the
newest), and pinned only once that checkpoint's signature verifies with a log operator's key registered in
``OrgRegistry`` and its (size, root) is the one ``ProvenanceLog`` holds: whoever serves the note (the
gateway) supplies nothing the trust file relies on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from provenance.chain.contracts import Role, at, org_id_text
from provenance.chain.seal import validator_id
from provenance.crypto import SM2PublicKey
from provenance.domains import kind_roles
from provenance.errors import CheckpointInvalid, FormatError, KeyInvalid, ProvenanceError
from provenance.log.checkpoint import NoteVerifier, open_note, parse_note, verify_note_text
from provenance.log.cosignature import WitnessKey, WitnessPolicy
from provenance.orgs import OrgEntry, OrgKey
from provenance.timestamps import optional_chain_time
from provenance.verification.trust import LogKey, TrustStore


class ExportInvalid(FormatError, code="EXPORT_INVALID"):
    """The chain (or the note read beside it) does not give a consistent trust file."""


def read_orgs(w3: Web3, registry: str) -> dict[str, OrgEntry]:
    """Every organisation of ``OrgRegistry`` with its role and SM2 keys (validity windows, revocations)."""
    reg = at(w3, "OrgRegistry", registry)
    orgs: dict[str, OrgEntry] = {}
    for raw_id in reg.functions.orgIds().call():
        org_id = org_id_text(bytes(raw_id))
        info = reg.functions.getOrg(raw_id).call()
        orgs[org_id] = registry_org(org_id, info, reg.functions.keysOf(raw_id).call())
    return orgs


def registry_org(org_id: str, info: Sequence[Any], keys: Sequence[Sequence[Any]]) -> OrgEntry:
    """An organisation from what ``OrgRegistry.getOrg`` (role, active, created, name) and ``keysOf`` (raw
    key, valid from, valid until, revoked at: unix seconds, 0 for none) return: the one conversion, for
    the SDK's reads and the gateway's. A key that is not an SM2 point can sign nothing: it is left out, the
    others keep their registry index."""
    role, active, _created, name = info
    parsed = []
    for index, (raw, valid_from, valid_until, revoked_at) in enumerate(keys):
        try:
            public_key = SM2PublicKey.from_raw(bytes(raw))
        except KeyInvalid:
            continue
        parsed.append(
            OrgKey(
                public_key=public_key,
                valid_from=optional_chain_time(valid_from),
                valid_until=optional_chain_time(valid_until),
                revoked_at=optional_chain_time(revoked_at),
                index=index,
            )
        )
    return OrgEntry(org_id=org_id, role=Role(role).label, name=name, keys=tuple(parsed), active=bool(active))


def _log_keys(orgs: dict[str, OrgEntry]) -> list[OrgKey]:
    """The keys the log signs with: every key of the log operator organisations, each with its window (a
    rotated or revoked key still verifies the checkpoints of records dated inside it)."""
    role = Role.LOG_OPERATOR.label
    return [k for o in orgs.values() if o.role == role for k in o.keys]


def log_identity(
    w3: Web3, provenance_log: str, keys: list[OrgKey], note_for: Callable[[int], str]
) -> tuple[str, str]:
    """(key name, origin) of the log, from the newest anchored checkpoint, checked against the chain."""
    log = at(w3, "ProvenanceLog", provenance_log)
    latest = log.functions.latest().call()
    size, root = int(latest[0]), bytes(latest[1])
    if size == 0:
        raise ExportInvalid(
            f"ProvenanceLog {log.address} holds no anchor yet: pass --log-key-name and --log-origin"
        )
    note = note_for(size)
    try:
        cp, signatures = parse_note(note)
        body, _ = open_note(note)
    except CheckpointInvalid as exc:
        raise ExportInvalid(
            f"the checkpoint served for tree size {size} is malformed: {exc.message}"
        ) from exc
    if (cp.size, cp.root) != (size, root):
        raise ExportInvalid(f"the checkpoint served for tree size {size} is not the one anchored on chain")
    for sig in signatures:
        for key in keys:
            try:
                verifier = NoteVerifier(name=sig.key_name, public_key=key.public_key)
                if verifier.matches(sig):
                    verify_note_text(body, signatures, verifier)
                    return sig.key_name, cp.origin
            except CheckpointInvalid:
                continue
    raise ExportInvalid(
        f"the anchored checkpoint of tree size {size} is signed by no log operator key of OrgRegistry"
    )


def read_trust(
    w3: Web3,
    registry: str,
    *,
    provenance_log: str,
    note_for: Callable[[int], str] | None = None,
    log_key_name: str | None = None,
    log_origin: str | None = None,
    rpc_url: str | None = None,
) -> TrustStore:
    """Everything a verifier pins, from the chain: organisations, roles, keys, the log and its contract.

    The log's key name and origin come from ``note_for`` (the checkpoint note of an anchored size, e.g. the
    gateway's), checked as the module says; explicit ``log_key_name`` and ``log_origin`` must agree with it,
    and stand alone when no note source is given.
    """
    registry = Web3.to_checksum_address(registry)
    provenance_log = Web3.to_checksum_address(provenance_log)
    log = at(w3, "ProvenanceLog", provenance_log)
    try:
        gate = log.functions.registry().call()
        log.functions.latest().call()
    except (ContractLogicError, BadFunctionCallOutput) as exc:  # no such contract or function there
        raise ExportInvalid(f"{provenance_log} is not a ProvenanceLog: {exc}") from exc
    if Web3.to_checksum_address(gate) != registry:
        raise ExportInvalid(f"ProvenanceLog {provenance_log} answers to registry {gate}, not {registry}")
    orgs = read_orgs(w3, registry)
    keys = _log_keys(orgs)
    if not keys:
        raise ExportInvalid(f"OrgRegistry {registry} has no log operator key: there is no log to pin")
    if note_for is not None:
        name, origin = log_identity(w3, provenance_log, keys, note_for)
        for given, found, what in ((log_key_name, name, "key name"), (log_origin, origin, "origin")):
            if given is not None and given != found:
                raise ExportInvalid(f"the anchored checkpoint's log {what} is {found!r}, not {given!r}")
    elif log_key_name is not None and log_origin is not None:
        name, origin = log_key_name, log_origin
    else:
        raise ExportInvalid(
            "pass --gateway (to read the log's name from the chain) or both --log-key-name and --log-origin"
        )
    logs = [LogKey.of(name, origin, k) for k in keys]
    chain: dict[str, Any] = {
        "chain_id": int(w3.eth.chain_id),
        "org_registry": registry,
        "provenance_log": provenance_log,
    }
    if rpc_url is not None:
        chain["rpc_url"] = rpc_url
    if validators := read_validators(w3):
        chain["validators"] = [{"public_key": k.to_pem().decode("ascii")} for k in validators]
    return TrustStore(orgs=orgs, logs=logs, chain=chain, kinds=kind_roles())


def read_validators(w3: Web3) -> list[SM2PublicKey]:
    """The chain's sealing keys as its node names them (``gm_validators``: our node's genesis validators);
    empty for an engine that seals no blocks with SM2 (anvil, Besu QBFT), whose blocks then prove nothing
    to a verifier (``docs/design/verify-cli.md``)."""
    resp: Any = w3.provider.make_request("gm_validators", [])  # type: ignore[arg-type]
    if not isinstance(resp, dict) or "error" in resp:
        return []
    keys = []
    for v in resp.get("result") or []:
        try:
            key = SM2PublicKey.from_pem(v["public_key_pem"])
        except (KeyError, TypeError, ProvenanceError) as exc:
            raise ExportInvalid(f"the node names a validator without a valid SM2 key: {exc}") from exc
        if v.get("id") != validator_id(key):
            raise ExportInvalid(f"the node names validator {str(v.get('id'))[:80]} with another key")
        keys.append(key)
    return keys


def witness_policy(store: TrustStore, witnesses: list[tuple[str, str]], quorum: int) -> WitnessPolicy:
    """The policy of ``witnesses`` ((organisation, verifier key string) pairs) and ``quorum``, each key
    checked to be a registered, unrevoked key of its organisation in the registry ``store`` was read from."""
    keys = []
    for org, vkey in witnesses:
        w = WitnessKey.from_vkey(vkey, org=org)
        entry = store.orgs.get(org)
        if entry is None:
            raise FormatError(f"witness {w.name}: organisation {org!r} is not in OrgRegistry")
        if not any(k.public_key == w.public_key and k.revoked_at is None for k in entry.keys):
            raise FormatError(f"witness {w.name}: its key is not a registered, unrevoked key of {org!r}")
        keys.append(w)
    return WitnessPolicy(witnesses=tuple(keys), quorum=quorum)
