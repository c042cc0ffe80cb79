"""Read organisations, roles and SM2 key windows from ``OrgRegistry`` into a :class:`TrustStore`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from web3 import Web3

from provenance.contracts import Role, at, org_id_text
from provenance.cosignature import WitnessKey, WitnessPolicy
from provenance.crypto import SM2PublicKey
from provenance.errors import FormatError
from provenance.trust import LogKey, OrgEntry, OrgKey, TrustStore


def _ts(value: int) -> datetime | None:
    # The registry stores 0 for "no bound" (validUntil, revokedAt) and for "from the start" (validFrom).
    return datetime.fromtimestamp(value, UTC) if value else None


def read_trust(
    w3: Web3,
    registry: str,
    *,
    log_key_name: str | None = None,
    log_origin: str | None = None,
    extra: dict[str, Any] | None = None,
) -> TrustStore:
    """Every organisation with its keys; the keys of ``log_operator`` orgs become log keys when named."""
    reg = at(w3, "OrgRegistry", registry)
    orgs: dict[str, OrgEntry] = {}
    logs: list[LogKey] = []
    for raw_id in reg.functions.orgIds().call():
        org_id = org_id_text(bytes(raw_id))
        info = reg.functions.getOrg(raw_id).call()
        role = Role(info[0])
        keys = []
        for k in reg.functions.keysOf(raw_id).call():
            pub = SM2PublicKey.from_raw(bytes(k[0]))
            keys.append(
                OrgKey(
                    public_key=pub,
                    pem=pub.to_pem().decode("ascii"),
                    valid_from=_ts(k[1]),
                    valid_until=_ts(k[2]),
                    revoked_at=_ts(k[3]),
                )
            )
        orgs[org_id] = OrgEntry(org_id=org_id, role=role.name.lower(), name=info[3], keys=tuple(keys))
        if role == Role.LOG_OPERATOR and log_key_name and info[1]:
            logs.extend(
                LogKey(name=log_key_name, public_key=k.public_key, pem=k.pem, origin=log_origin)
                for k in keys
                if k.revoked_at is None
            )
    chain = {"chain_id": w3.eth.chain_id, "registry": Web3.to_checksum_address(registry)} | (extra or {})
    return TrustStore(orgs=orgs, logs=logs, chain=chain)


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
