"""The local devnet's network: its engine accounts, contracts and demo organisations (first run), manifest
and trust file, API tokens, and what a running network offers.

Everything here is state under the devnet folder (``devnet/layout.py``); the processes that serve it
(node or anvil, witnesses, gateway) are the supervisor's (``devnet/supervisor.py``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from devnet.config import DevnetSettings
from devnet.deploy import WITNESS_QUORUM, demo_orgs, deploy_network, write_manifest
from devnet.engines import EngineHandle
from devnet.layout import HOST, DevnetError, Layout
from devnet.processes import read_pid
from devnet.solc import REPO_ROOT
from provenance.files import write_private
from provenance.manifest import Manifest
from provenance.network_key import NETWORK_KEY_NAME, create_network_key, key_id

COMMITTEE_SIZE = 3
# The devnet's own engine accounts (never the public test mnemonic): deployer, then the committee.
ENGINE_ACCOUNTS = ("deployer", *(f"committee-{i}" for i in range(1, COMMITTEE_SIZE + 1)))


@dataclass(frozen=True, kw_only=True)
class OrgInfo:
    """One demo organisation as ``up`` prints it."""

    id: str
    role: str
    name: str
    token_file: Path | None


@dataclass(frozen=True, kw_only=True)
class NetworkInfo:
    """What a running devnet offers, for printing."""

    engine: str
    chain_id: int
    rpc_url: str
    height: int | None
    gateway_url: str | None
    manifest: Path
    trust: Path
    contracts: dict[str, str]
    committee: list[str]
    orgs: list[OrgInfo]
    created: bool
    pid: int
    notes: list[str]
    witnesses: list[dict[str, str]] = dataclasses.field(default_factory=list)  # org, name, url


def engine_accounts(layout: Layout) -> list[LocalAccount]:
    """The deployer and committee accounts of the embedded network, created (0600) on first use."""
    accounts: list[LocalAccount] = []
    for name in ENGINE_ACCOUNTS:
        path = layout.account_key(name)
        if path.exists():
            acct: LocalAccount = Account.from_key(path.read_text("ascii").strip())
        else:
            acct = Account.create()
            write_private(path, (acct.key.hex() + "\n").encode("ascii"))
        accounts.append(acct)
    return accounts


def rpc(url: str, timeout: float = 5) -> Web3:
    """web3.py on the devnet's node."""
    return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))


def gateway_wanted(settings: DevnetSettings) -> bool:
    """True if the gateway is wanted and its module is installed (it is found, not imported)."""
    if not settings.start_gateway:
        return False
    try:
        return importlib.util.find_spec("gateway.main") is not None
    except ModuleNotFoundError:
        return False


def _wipe_network(layout: Layout) -> None:
    """Forget a network whose chain is gone (anvil keeps no state): manifest, keys, tokens, gateway DB."""
    for path in (layout.manifest, layout.trust):
        path.unlink(missing_ok=True)
    for folder in (layout.keys_dir, layout.tokens_dir):
        if folder.exists():
            shutil.rmtree(folder)
    for db in layout.root.glob(layout.gateway_db.name + "*"):  # with SQLite's -wal and -shm
        db.unlink()


class Network:
    """The state of one devnet: checked, deployed or resumed, given tokens."""

    def __init__(self, *, settings: DevnetSettings, on_step: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.on_step = on_step or (lambda _message: None)
        self.layout = Layout(settings.dir.resolve())
        self.manifest: Manifest | None = None
        self.created = False
        self.notes: list[str] = []  # things the user should hear about, printed by the caller

    def check_state(self) -> None:
        """Refuse state this run cannot use; forget an anvil network (its chain died with anvil)."""
        lay, engine = self.layout, self.settings.engine
        if lay.manifest.exists():
            previous = Manifest.load(lay.manifest).engine
            if previous != engine:
                raise DevnetError(
                    f"{lay.root} holds an {previous} network; use another --dir for {engine} "
                    "or `provenance devnet reset`"
                )
            if engine == "anvil":
                _wipe_network(lay)
            return
        # No manifest: a first run stopped before the end (Ctrl-C while deploying). Its chain has the
        # deployer's nonce spent and its keys were never handed out, so starting over loses nothing.
        leftovers = (lay.node_dir / "genesis.json").exists() or any(lay.keys_dir.glob("*.sm2.pem"))
        if leftovers:
            self.notes.append(f"{lay.root}: the first start did not finish; starting a new network")
            _wipe_network(lay)
            shutil.rmtree(lay.node_dir, ignore_errors=True)

    def ensure_deployed(self, engine: EngineHandle) -> Manifest:
        """Deploy on the first run; on later runs check the chain still holds the manifest's contracts."""
        lay = self.layout
        if not lay.manifest.exists():
            self.created = True
            self.on_step("first run: deploying the contracts and registering the demo organisations")
            self.manifest = deploy_network(
                engine,
                demo_orgs(),
                out_dir=lay.root,
                committee_size=COMMITTEE_SIZE,
                witness_quorum=WITNESS_QUORUM if gateway_wanted(self.settings) else 0,
            )
            return self.manifest
        manifest = Manifest.load(lay.manifest)
        w3 = rpc(engine.rpc_url)
        registry = manifest.contracts["OrgRegistry"]
        if manifest.chain_id != engine.chain_id or not w3.eth.get_code(Web3.to_checksum_address(registry)):
            raise DevnetError(
                f"the chain in {lay.node_dir} does not hold the contracts of {lay.manifest}; "
                "run `provenance devnet reset --yes` and start again"
            )
        key = lay.keys_dir / NETWORK_KEY_NAME
        if not key.exists():  # a devnet made before keyed digests on chain: none is on its chain yet
            manifest = dataclasses.replace(manifest, network_key_id=key_id(create_network_key(key)))
            write_manifest(manifest)
        if manifest.rpc_url != engine.rpc_url:  # resumed on another port: clients read the manifest
            manifest = dataclasses.replace(manifest, rpc_url=engine.rpc_url)
            write_manifest(manifest)
        self.manifest = manifest
        return manifest

    def gateway_env(self, extra: dict[str, str]) -> dict[str, str]:
        """The gateway's environment (its settings) for this network, with ``extra`` (its witnesses)."""
        return {
            **os.environ,
            "PROV_GW_MANIFEST_PATH": str(self.layout.manifest),
            "PROV_GW_DATABASE_URL": f"sqlite:///{self.layout.gateway_db}",
            "PROV_GW_KEK_FILE": str(self.layout.gateway_kek),
            "PROV_GW_HOST": HOST,
            "PROV_GW_PORT": str(self.settings.gateway_port),
            **extra,
        }

    def mint_tokens(self, *, env: dict[str, str], meanwhile: Callable[[], None]) -> None:
        """One API token file (0600) per organisation that has none yet, through the gateway's CLI."""
        assert self.manifest is not None
        missing = [o.id for o in self.manifest.orgs if not self.layout.token_file(o.id).exists()]
        if not missing:
            meanwhile()
            return
        self.layout.tokens_dir.mkdir(parents=True, exist_ok=True)

        def mint(org: str) -> subprocess.Popen[str]:
            cmd = [sys.executable, "-m", "gateway", "mint-token", "--org", org, "--label", "devnet"]
            cmd += ["--out", str(self.layout.token_file(org))]
            return subprocess.Popen(  # noqa: S603 - the gateway's own CLI, fixed argv
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO_ROOT
            )

        # The first one alone creates the tables; the rest in parallel (each pays the import time),
        # while the gateway starts (the caller's ``meanwhile``).
        first, rest = missing[0], missing[1:]
        procs = [(first, mint(first))]
        procs[0][1].wait()
        procs += [(org, mint(org)) for org in rest]
        meanwhile()
        for org, proc in procs:
            output, _ = proc.communicate(timeout=self.settings.start_timeout)
            if proc.returncode != 0:
                raise DevnetError(f"minting the API token of {org} failed: {output.strip()[-1000:]}")


def describe(layout: Layout) -> NetworkInfo:
    """The running network over ``layout``, from its manifest and endpoints file."""
    manifest = Manifest.load(layout.manifest)
    try:
        endpoints: dict[str, Any] = json.loads(layout.endpoints.read_text("utf-8"))
    except (OSError, ValueError):
        endpoints = {}
    rpc_url = str(endpoints.get("rpc_url") or manifest.rpc_url)
    height: int | None
    try:
        height = rpc(rpc_url, timeout=2).eth.block_number
    except Exception:  # any failure just means "unknown" in a summary
        height = None
    gateway_url = endpoints.get("gateway_url")
    orgs = [
        OrgInfo(
            id=o.id,
            role=o.role,
            name=o.name,
            token_file=layout.token_file(o.id) if layout.token_file(o.id).exists() else None,
        )
        for o in manifest.orgs
    ]
    return NetworkInfo(
        engine=manifest.engine,
        chain_id=manifest.chain_id,
        rpc_url=rpc_url,
        height=height,
        gateway_url=str(gateway_url) if gateway_url else None,
        manifest=layout.manifest,
        trust=layout.trust,
        contracts=dict(manifest.contracts),
        committee=list(manifest.committee),
        orgs=orgs,
        created=bool(endpoints.get("created", False)),
        notes=[str(n) for n in endpoints.get("notes", [])],
        pid=read_pid(layout, "devnet") or os.getpid(),
        witnesses=[{str(k): str(v) for k, v in w.items()} for w in endpoints.get("witnesses", [])],
    )
