"""Deploy every contract, register organisations through the committee, and write the network manifest.

Changes to a running network by committee vote (keys, organisations, anchors) are ``devnet/governance.py``.

The manifest (``manifest.json`` in ``out_dir``) is what the gateway, the devnet and the tests read to find
the chain, the contracts and the organisations. Secret keys live in files next to it (mode 0600); the
manifest only names them. A trust file (``trust.json``, the ``provenance verify --trust`` format) pins the
organisations' SM2 keys and the log key for offline verification.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from adapters import registry as domains
from adapters.abc import Provision
from devnet.engines import EngineHandle
from devnet.governance import OrgSpec, committee_pass_many, send_all
from provenance.chain.contracts import (
    ProposalKind,
    Role,
    Suite,
    at,
    deploy_suite,
    org_id,
)
from provenance.chain.registry import read_validators
from provenance.crypto import SM2PrivateKey
from provenance.files import write_private, write_public
from provenance.manifest import Manifest, ManifestOrg
from provenance.network_key import NETWORK_KEY_NAME, create_network_key, key_id
from provenance.timestamps import format_rfc3339

MANIFEST_NAME = "manifest.json"
TRUST_NAME = "trust.json"
LOG_ORIGIN = "shancheng.devnet/log"
LOG_KEY_NAME = "shancheng-devnet-log"
# Organisations other than the log operator that run a witness of the log, each with a dedicated SM2 key
# registered in OrgRegistry (docs/design/witness.md); a checkpoint needs WITNESS_QUORUM of their cosignatures.
WITNESS_ROLES = (Role.REGULATOR, Role.AUDITOR, Role.ENV_BUREAU)
WITNESS_QUORUM = 2
WITNESS_NAME = "shancheng.devnet/witness/{org}"
FUNDING_WEI = 10**20  # 100 ether of a test chain: enough gas for any test or bench run


def role_name(role: Role) -> str:
    """The manifest / API spelling of a role (``Role.DATA_OWNER`` -> ``"data_owner"``)."""
    return role.name.lower()


def parse_role(name: str) -> Role:
    """Inverse of :func:`role_name`."""
    try:
        return Role[name.upper()]
    except KeyError:
        raise ValueError(f"unknown role {name!r}") from None


def demo_orgs() -> list[OrgSpec]:
    """The demo organisations: every role, two of the ones that race or scale (hospitals, pharmacies)."""
    return [
        OrgSpec(id="hospital-1", role=Role.HOSPITAL, name="山城第一人民医院"),
        OrgSpec(id="hospital-2", role=Role.HOSPITAL, name="山城中医院"),
        OrgSpec(id="pharmacy-1", role=Role.PHARMACY, name="解放碑大药房"),
        OrgSpec(id="pharmacy-2", role=Role.PHARMACY, name="观音桥药店"),
        # Licensed pharmacists (执业药师) reviewing prescriptions (审方): at a pharmacy, at a hospital.
        OrgSpec(id="pharmacist-1", role=Role.PHARMACIST, name="解放碑大药房 执业药师 王敏"),
        OrgSpec(id="pharmacist-2", role=Role.PHARMACIST, name="山城第一人民医院 临床药师 李静"),
        OrgSpec(id="insurer", role=Role.INSURER, name="市医疗保障局"),
        OrgSpec(id="data-owner", role=Role.DATA_OWNER, name="市卫健委数据中心", datasets=("health-stats",)),
        OrgSpec(id="data-user", role=Role.DATA_USER, name="市统计局"),
        OrgSpec(id="env-bureau", role=Role.ENV_BUREAU, name="市生态环境局"),
        OrgSpec(
            id="station-1",
            role=Role.MONITORING_STATION,
            name="空气自动站 FQ0007",
            stations=("44030020261125FQ0007",),
        ),
        OrgSpec(
            id="station-2",
            role=Role.MONITORING_STATION,
            name="水质自动站 WS0001",
            stations=("33010020261125WS0001",),
        ),
        OrgSpec(id="gas-utility", role=Role.GAS_UTILITY, name="山城燃气集团", stations=("SCGAS-DL-0001",)),
        OrgSpec(id="gas-utility-2", role=Role.GAS_UTILITY, name="渝北燃气公司", stations=("YBGAS-DL-0001",)),
        OrgSpec(id="party-branch", role=Role.PARTY_BRANCH, name="机关第一党支部"),
        OrgSpec(id="auditor", role=Role.AUDITOR, name="审计局"),
        OrgSpec(id="regulator", role=Role.REGULATOR, name="市场监管局"),
        OrgSpec(id="log-operator", role=Role.LOG_OPERATOR, name="山城溯源日志"),
    ]


def _fund_all(w3: Web3, sender: LocalAccount, to: Sequence[str], wei: int) -> list[Any]:
    """Send ``wei`` to each of ``to``; the transaction hashes (not waited for)."""
    if w3.eth.get_balance(sender.address) < (len(to) + 1) * wei:
        return []  # a zero-fee chain needs no funding
    nonce = w3.eth.get_transaction_count(sender.address, "pending")
    chain_id, gas_price = w3.eth.chain_id, w3.eth.gas_price
    hashes = []
    for i, address in enumerate(to):
        tx: dict[str, Any] = {
            "to": address,
            "value": wei,
            "from": sender.address,
            "nonce": nonce + i,
            "chainId": chain_id,
            "gas": 21_000,
            "gasPrice": gas_price,
        }
        hashes.append(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
    return hashes


def _rel(path: Path, base: Path) -> str:
    return str(path.relative_to(base))


def deploy_network(
    engine: EngineHandle,
    orgs: Iterable[OrgSpec] | None = None,
    *,
    out_dir: Path,
    committee_size: int = 3,
    witness_quorum: int = 0,
    review_required: bool = True,
) -> Manifest:
    """Deploy the contracts on ``engine``, register ``orgs`` (default: :func:`demo_orgs`), write the manifest.

    Keys are created under ``out_dir/keys`` (0600), the network key (``network.key``) among them.
    ``engine.accounts[0]`` deploys; the next ``committee_size`` accounts form the committee (equal
    weights, a majority decides). The organisations of ``WITNESS_ROLES`` get a witness key each;
    ``witness_quorum`` > 0 (the devnet, which runs the witnesses: ``WITNESS_QUORUM``) puts the policy in the
    trust file, 0 leaves it out (a network whose gateway submits to no witness, as in most tests).
    ``review_required``: whether ``Prescriptions`` refuses a dispense without a pharmacist's approved review
    (审方); set once, before the first prescription.
    """
    specs = list(demo_orgs() if orgs is None else orgs)
    out_dir = Path(out_dir).resolve()
    keys_dir = out_dir / "keys"
    w3 = Web3(Web3.HTTPProvider(engine.rpc_url, request_kwargs={"timeout": 30}))
    admin = engine.accounts[0]
    committee = engine.accounts[1 : 1 + committee_size]
    if len(committee) < 2:
        raise ValueError("the engine needs at least 3 accounts (deployer + 2 committee members)")
    suite: Suite = deploy_suite(
        w3,
        sender=admin,
        committee=[(m.address, 1) for m in committee],
        participates_rate=51,
        win_rate=51,
        contracts=domains.contracts(),
    )
    registry = suite.registry

    entries: list[ManifestOrg] = []
    accounts: dict[str, LocalAccount] = {}
    raw_keys: dict[str, bytes] = {}
    for spec in specs:
        sm2_key = SM2PrivateKey.generate()
        sm2_path = keys_dir / f"{spec.id}.sm2.pem"
        write_private(sm2_path, sm2_key.to_pem())
        write_public(keys_dir / f"{spec.id}.sm2.pub.pem", sm2_key.public_key_pem())
        acct: LocalAccount = Account.create()
        acct_path = keys_dir / f"{spec.id}.tx.key"
        write_private(acct_path, (acct.key.hex() + "\n").encode("ascii"))
        raw_keys[spec.id] = sm2_key.public_key().raw()
        accounts[spec.id] = acct
        entries.append(
            ManifestOrg(
                id=spec.id,
                role=role_name(spec.role),
                name=spec.name or spec.id,
                account=acct.address,
                account_key_file=_rel(acct_path, out_dir),
                sm2_key_file=_rel(sm2_path, out_dir),
                public_key=sm2_key.public_key_pem().decode("ascii"),
                datasets=list(spec.datasets),
                stations=list(spec.stations),
            )
        )

    # The network's secret of keyed digests on chain (provenance.network_key): every gateway of this
    # network is started with this file, auditors and regulators get a copy; never in the manifest.
    network_key = create_network_key(keys_dir / NETWORK_KEY_NAME)

    witnesses: list[dict[str, str]] = []
    witness_proposals: list[tuple[ProposalKind, tuple[Any, ...]]] = []
    for spec in specs:
        if spec.role in WITNESS_ROLES:
            wkey = SM2PrivateKey.generate()
            wpath = keys_dir / f"{spec.id}.witness.sm2.pem"
            write_private(wpath, wkey.to_pem())
            pem = wkey.public_key_pem().decode("ascii")
            name = WITNESS_NAME.format(org=spec.id)
            witnesses.append(
                {"org": spec.id, "name": name, "key_file": _rel(wpath, out_dir), "public_key": pem}
            )
            witness_proposals.append((ProposalKind.ADD_KEY, (org_id(spec.id), wkey.public_key().raw(), 0, 0)))

    # The funding travels in the blocks of the committee's first proposals; it is needed only after them.
    funding = _fund_all(w3, admin, [a.address for a in accounts.values()], FUNDING_WEI)
    committee_pass_many(
        w3,
        registry,
        committee,
        [(ProposalKind.ADD_ORG, (org_id(sp.id), int(sp.role), sp.name or sp.id)) for sp in specs],
    )
    committee_pass_many(
        w3,
        registry,
        committee,
        [(ProposalKind.ADD_KEY, (org_id(sp.id), raw_keys[sp.id], 0, 0)) for sp in specs]
        + [
            (ProposalKind.ADD_ACCOUNT, (org_id(sp.id), Web3.to_checksum_address(accounts[sp.id].address)))
            for sp in specs
        ]
        + witness_proposals,  # after the organisations' own keys: a witness key is an org's second key
    )

    for h in funding:
        w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.05)

    # What each domain sets up in its contracts (datasets, stations, settings), all in one go.
    setup = Provision(orgs=specs, contracts=suite.contracts, options={"review_required": review_required})
    send_all(
        w3,
        [
            (admin if call.sender is None else accounts[call.sender], call.function)
            for workflow in domains.workflows()
            for call in workflow.provision(setup)
        ],
    )

    operator = next((s for s in specs if s.role == Role.LOG_OPERATOR), None)
    if operator is not None:
        # The log signs checkpoints with the log operator's registered SM2 key, so auditors read the log key
        # from OrgRegistry (`provenance orgs export --log-key-name …`) like every other organisation's key.
        log_key_path = keys_dir / f"{operator.id}.sm2.pem"
        log_key = SM2PrivateKey.from_pem(log_key_path.read_bytes())
    else:
        log_key = SM2PrivateKey.generate()
        log_key_path = keys_dir / "log.sm2.pem"
        write_private(log_key_path, log_key.to_pem())
    manifest = Manifest(
        chain_id=engine.chain_id,
        rpc_url=engine.rpc_url,
        engine=engine.name,
        contracts=suite.addresses(),
        committee=[m.address for m in committee],
        orgs=entries,
        log={
            "origin": LOG_ORIGIN,
            "key_name": LOG_KEY_NAME,
            "key_file": _rel(log_key_path, out_dir),
            "public_key": log_key.public_key_pem().decode("ascii"),
            "operator_org": operator.id if operator else "",
        },
        created_at=format_rfc3339(datetime.now(UTC).replace(microsecond=0)),
        path=out_dir / MANIFEST_NAME,
        witnesses=witnesses,
        witness_quorum=min(witness_quorum, len(witnesses)),
        validators=[k.to_pem().decode("ascii") for k in read_validators(w3)],
        network_key_id=key_id(network_key),
    )
    write_manifest(manifest)
    return manifest


def write_manifest(manifest: Manifest) -> None:
    """Write ``manifest`` to its path, and the trust file beside it."""
    assert manifest.path is not None
    write_public(manifest.path, _json(manifest.to_dict()))
    write_public(manifest.path.with_name(TRUST_NAME), _json(manifest.trust_dict()))


def contracts_of(w3: Web3, manifest: Manifest) -> dict[str, Any]:
    """Contract objects bound to the manifest's deployment, by contract name."""
    return {name: at(w3, name, address) for name, address in manifest.contracts.items()}


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
