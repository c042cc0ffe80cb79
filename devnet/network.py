"""The local devnet: keys, genesis, node (or anvil), contracts, demo organisations, API tokens, gateway.

One supervisor process owns the node and the gateway: ``up`` in the foreground is that process; ``up
--detach`` starts it in a session of its own and returns once it is ready. ``down`` and ``status`` find
it through pid files under ``<dir>/run``. State lives under ``<dir>`` (default ``.devnet/``, git-ignored):

    node/            the embedded node's chain, genesis and SM2 validator key (0600)
    keys/            secp256k1 transaction keys and SM2 record keys (0600), public PEMs
    tokens/          one API token per organisation (0600)
    manifest.json    chain, contracts, organisations (written by ``devnet.deploy``); trust.json beside it
    gateway.db       the gateway's SQLite database
    gateway.kek      the gateway's key-encryption key, which wraps the payloads' data keys (0600)
    run/             pid files and endpoints.json of the running network; *.log beside it
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import rlp  # type: ignore[import-untyped,unused-ignore]
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from devnet import witnesses
from devnet.anvil import start_anvil
from devnet.config import DevnetSettings
from devnet.deploy import MANIFEST_NAME, TRUST_NAME, WITNESS_QUORUM, demo_orgs, deploy_network
from devnet.embedded import start_embedded
from devnet.engines import EngineHandle
from devnet.solc import REPO_ROOT
from provenance.errors import ProvenanceError
from provenance.files import write_private, write_public
from provenance.manifest import Manifest

HOST = "127.0.0.1"
COMMITTEE_SIZE = 3
# The devnet's own engine accounts (never the public test mnemonic): deployer, then the committee.
ENGINE_ACCOUNTS = ("deployer", *(f"committee-{i}" for i in range(1, COMMITTEE_SIZE + 1)))
# What /proc/<pid>/cmdline must hold for a pid file to still name our process (pids get reused).
PROCESS_MARKERS = {
    "devnet": ("devnet",),
    "node": ("chain_node", "anvil"),
    "gateway": ("gateway",),
    "witness": ("witness",),  # witness-<org>
}


class DevnetError(ProvenanceError):
    """The devnet cannot start, stop or find its state."""

    code = "DEVNET_ERROR"


class _Stopped(BaseException):
    """Raised by the SIGINT/SIGTERM handler to unwind whatever the supervisor is doing."""


@dataclass(frozen=True)
class Layout:
    """Where each piece of devnet state lives under the devnet directory."""

    root: Path

    @property
    def node_dir(self) -> Path:
        return self.root / "node"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def tokens_dir(self) -> Path:
        return self.root / "tokens"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def trust(self) -> Path:
        return self.root / TRUST_NAME

    @property
    def gateway_db(self) -> Path:
        return self.root / "gateway.db"

    @property
    def gateway_kek(self) -> Path:
        return self.root / "gateway.kek"

    @property
    def endpoints(self) -> Path:
        return self.run_dir / "endpoints.json"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def children(self) -> list[str]:
        """The names of the processes the supervisor starts that have pid files: witnesses, gateway, node."""
        found = sorted(p.stem for p in self.run_dir.glob(f"{witnesses.PREFIX}*.pid"))
        return [*found, "gateway", "node"]

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def account_key(self, name: str) -> Path:
        return self.keys_dir / f"{name}.tx.key"

    def token_file(self, org: str) -> Path:
        return self.tokens_dir / f"{org}.token"

    def looks_like_devnet(self) -> bool:
        """True if the folder holds devnet state (``reset`` removes nothing else)."""
        markers = (self.manifest, self.node_dir, self.keys_dir, self.run_dir, self.log("devnet"))
        return any(p.exists() for p in markers)

    def check_usable(self) -> None:
        """Refuse a folder that holds something other than a devnet (``--dir /tmp`` by mistake)."""
        if self.root.is_dir() and any(self.root.iterdir()) and not self.looks_like_devnet():
            raise DevnetError(f"{self.root} is not empty and holds no devnet; choose a new or empty folder")


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


@dataclass(frozen=True, kw_only=True)
class ServiceStatus:
    """One process of the devnet as ``status`` sees it."""

    name: str
    pid: int | None
    running: bool
    url: str | None = None
    healthy: bool | None = None
    detail: str = ""


# -- keys and genesis ------------------------------------------------------------------------------------


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


def create_address(sender: str, nonce: int) -> str:
    """The address of the contract that ``sender`` creates with ``nonce`` (CREATE, not CREATE2)."""
    return Web3.to_checksum_address(Web3.keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def init_genesis(layout: Layout, accounts: list[LocalAccount]) -> Path:
    """Write the node's genesis: the deployer may create contracts, the committee may transact.

    Organisations' accounts are created later, so the node is told to consult ``OrgRegistry`` for
    them: the registry is the deployer's first contract, so its address is known before it exists.
    """
    genesis = layout.node_dir / "genesis.json"
    deployer, *committee = accounts
    cmd = [
        sys.executable,
        "-m",
        "chain_node",
        "init",
        "--out",
        str(genesis),
        "--data-dir",
        str(layout.node_dir),
    ]
    cmd += ["--admin", deployer.address, "--permission-contract", create_address(deployer.address, 0)]
    for member in committee:
        cmd += ["--alloc", member.address]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if done.returncode != 0:
        raise DevnetError(f"chain_node init failed: {done.stderr.strip() or done.stdout.strip()}")
    return genesis


# -- process bookkeeping ---------------------------------------------------------------------------------


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent: init in many containers is slow or absent) is dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    return True


def _ours(name: str, pid: int) -> bool:
    """True if ``pid`` is alive and still the process the pid file ``name`` was written for."""
    if not _alive(pid):
        return False
    cmdline = _cmdline(pid)
    if cmdline is None:  # no /proc: trust the pid file
        return True
    return any(marker in cmdline for marker in PROCESS_MARKERS[name.partition("-")[0]])


def _read_pid(layout: Layout, name: str) -> int | None:
    try:
        return int(layout.pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None


def _write_pid(layout: Layout, name: str, pid: int) -> None:
    write_public(layout.pid_file(name), f"{pid}\n".encode())


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` s, then SIGKILL (for processes that are not our children)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _stop_child(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # As the servers do: a port whose last connections linger in TIME_WAIT is free to listen on.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""


def running_pid(layout: Layout) -> int | None:
    """The pid of the devnet supervisor running over ``layout``, if any."""
    pid = _read_pid(layout, "devnet")
    return pid if pid is not None and _ours("devnet", pid) else None


def _clear_stale(layout: Layout, timeout: float) -> None:
    """After a supervisor died without cleaning up (kill -9), stop its orphans and drop its run files."""
    for name in layout.children():
        pid = _read_pid(layout, name)
        if pid is not None and _ours(name, pid):
            _terminate(pid, timeout)
    if layout.run_dir.exists():
        shutil.rmtree(layout.run_dir)


# -- the network -----------------------------------------------------------------------------------------


def _rpc(url: str, timeout: float = 5) -> Web3:
    return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _wipe_network(layout: Layout) -> None:
    """Forget a network whose chain is gone (anvil keeps no state): manifest, keys, tokens, gateway DB."""
    for path in (layout.manifest, layout.trust):
        path.unlink(missing_ok=True)
    for folder in (layout.keys_dir, layout.tokens_dir):
        if folder.exists():
            shutil.rmtree(folder)
    for db in layout.root.glob(layout.gateway_db.name + "*"):  # with SQLite's -wal and -shm
        db.unlink()


def _gateway_wanted(settings: DevnetSettings) -> bool:
    """True if the gateway is wanted and its module is installed (it is found, not imported)."""
    if not settings.start_gateway:
        return False
    try:
        return importlib.util.find_spec("gateway.main") is not None
    except ModuleNotFoundError:
        return False


class Devnet:
    """The processes of one devnet, owned by the calling (supervisor) process."""

    def __init__(self, *, settings: DevnetSettings, on_step: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.on_step = on_step or (lambda _message: None)
        self.layout = Layout(settings.dir.resolve())
        self.engine: EngineHandle | None = None
        self.gateway: subprocess.Popen[bytes] | None = None
        self.witnesses: list[witnesses.WitnessProcess] = []
        self.manifest: Manifest | None = None
        self.created = False
        self.notes: list[str] = []  # things the user should hear about, printed by the caller

    @property
    def gateway_url(self) -> str:
        return f"http://{HOST}:{self.settings.gateway_port}"

    def _check_state(self) -> None:
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

    def _start_engine(self) -> EngineHandle:
        s, lay = self.settings, self.layout
        if not _port_free(s.rpc_port):
            raise DevnetError(f"port {s.rpc_port} is in use (another node? try `provenance devnet status`)")
        if s.engine == "anvil":
            try:
                return start_anvil(port=s.rpc_port, block_time=s.block_time)
            except (OSError, RuntimeError) as exc:
                raise DevnetError(f"anvil did not start: {exc}") from exc
        accounts = engine_accounts(lay)
        if not (lay.node_dir / "genesis.json").exists():
            init_genesis(lay, accounts)
        try:
            return start_embedded(
                data_dir=lay.node_dir,
                port=s.rpc_port,
                accounts=accounts,
                block_time=s.block_time,
                dev_rpc=False,
            )
        except ProvenanceError as exc:
            hint = " (a chain from an older node version? `provenance devnet reset --yes`)"
            raise DevnetError(exc.message + (hint if lay.manifest.exists() else "")) from exc

    def _ensure_deployed(self, engine: EngineHandle) -> Manifest:
        """Deploy on the first run; on later runs check the chain still holds the manifest's contracts."""
        lay = self.layout
        if not lay.manifest.exists():
            self.created = True
            self.on_step("first run: deploying the contracts and registering the demo organisations")
            return deploy_network(
                engine,
                demo_orgs(),
                out_dir=lay.root,
                committee_size=COMMITTEE_SIZE,
                witness_quorum=WITNESS_QUORUM if _gateway_wanted(self.settings) else 0,
            )
        manifest = Manifest.load(lay.manifest)
        w3 = _rpc(engine.rpc_url)
        registry = manifest.contracts["OrgRegistry"]
        if manifest.chain_id != engine.chain_id or not w3.eth.get_code(Web3.to_checksum_address(registry)):
            raise DevnetError(
                f"the chain in {lay.node_dir} does not hold the contracts of {lay.manifest}; "
                "run `provenance devnet reset --yes` and start again"
            )
        if manifest.rpc_url != engine.rpc_url:  # resumed on another port: clients read the manifest
            manifest = dataclasses.replace(manifest, rpc_url=engine.rpc_url)
            write_public(lay.manifest, _json(manifest.to_dict()))
            write_public(lay.trust, _json(manifest.trust_dict()))
        return manifest

    def _gateway_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PROV_GW_MANIFEST_PATH": str(self.layout.manifest),
            "PROV_GW_DATABASE_URL": f"sqlite:///{self.layout.gateway_db}",
            "PROV_GW_KEK_FILE": str(self.layout.gateway_kek),
            "PROV_GW_HOST": HOST,
            "PROV_GW_PORT": str(self.settings.gateway_port),
            **witnesses.gateway_env(self.witnesses, self.manifest.witness_quorum if self.manifest else 0),
        }

    def _mint_tokens(self, manifest: Manifest, *, meanwhile: Callable[[], None]) -> None:
        """One API token file (0600) per organisation that has none yet, through the gateway's CLI."""
        missing = [o.id for o in manifest.orgs if not self.layout.token_file(o.id).exists()]
        if not missing:
            meanwhile()
            return
        self.layout.tokens_dir.mkdir(parents=True, exist_ok=True)
        env = self._gateway_env()

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

    def _spawn_gateway(self) -> None:
        s, lay = self.settings, self.layout
        if not _port_free(s.gateway_port):
            raise DevnetError(
                f"port {s.gateway_port} is in use (another gateway? `provenance devnet status`)"
            )
        cmd = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", str(s.gateway_port)]
        log = lay.log("gateway").open("ab")
        env = self._gateway_env()
        self.gateway = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)  # noqa: S603
        log.close()
        _write_pid(lay, "gateway", self.gateway.pid)

    def _wait_gateway(self) -> None:
        s, lay, proc = self.settings, self.layout, self.gateway
        assert proc is not None
        deadline = time.monotonic() + s.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DevnetError(f"gateway exited with {proc.returncode}: {_tail(lay.log('gateway'))}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.gateway_url}/healthz", timeout=1.0)
                return  # any HTTP answer: it serves; `status` reports whether it is healthy
            time.sleep(0.1)
        raise DevnetError(f"gateway did not answer on {self.gateway_url} within {s.start_timeout:.0f} s")

    def start(self) -> None:
        """Start the engine, deploy or resume, mint tokens, start the gateway; write pid files."""
        self._check_state()
        self.on_step(f"starting the {self.settings.engine} node on port {self.settings.rpc_port}")
        self.engine = self._start_engine()
        if self.engine.process is not None:
            _write_pid(self.layout, "node", self.engine.process.pid)
        self.manifest = self._ensure_deployed(self.engine)
        if _gateway_wanted(self.settings):
            self._start_witnesses(self.manifest)
            self.on_step(f"starting the gateway on port {self.settings.gateway_port}")
            self._mint_tokens(self.manifest, meanwhile=self._spawn_gateway)
            self._wait_gateway()
        endpoints = {
            "engine": self.engine.name,
            "rpc_url": self.engine.rpc_url,
            "gateway_url": self.gateway_url if self.gateway is not None else None,
            "witnesses": [{"org": w.org, "name": w.name, "url": w.url} for w in self.witnesses],
            "created": self.created,
            "notes": self.notes,
            "ready": True,
        }
        write_public(self.layout.endpoints, _json(endpoints))

    def _start_witnesses(self, manifest: Manifest) -> None:
        """Start the manifest's witnesses and wait until each answers (before the gateway submits to them)."""
        if not manifest.witnesses:
            return
        self.on_step(f"starting {len(manifest.witnesses)} witnesses ({manifest.witness_quorum} must cosign)")
        lay = self.layout
        self.witnesses = witnesses.spawn(
            manifest, root=lay.root, host=HOST, base_port=self.settings.witness_port, log_path=lay.log
        )
        for w in self.witnesses:
            _write_pid(lay, w.label, w.process.pid)
        problem = witnesses.wait_ready(self.witnesses, self.settings.start_timeout)
        if problem is not None:
            raise DevnetError(f"{problem}; see {lay.log(witnesses.PREFIX + '*')}")

    def dead_child(self) -> str | None:
        """The name of a process that exited on its own, if any."""
        if (
            self.engine is not None
            and self.engine.process is not None
            and self.engine.process.poll() is not None
        ):
            return "node"
        if self.gateway is not None and self.gateway.poll() is not None:
            return "gateway"
        # A witness that exits is not fatal: it delays quorum, never the acceptance of records (`status`
        # shows it stopped; its log says why).
        return None

    def stop(self) -> None:
        """Stop the gateway, then the engine (so the gateway's last writes reach the chain), then clean up."""
        if self.gateway is not None:
            _stop_child(self.gateway, self.settings.stop_timeout)
            self.layout.pid_file("gateway").unlink(missing_ok=True)
        for w in self.witnesses:
            _stop_child(w.process, self.settings.stop_timeout)
            self.layout.pid_file(w.label).unlink(missing_ok=True)
        if self.engine is not None:
            self.engine.stop()
            self.layout.pid_file("node").unlink(missing_ok=True)
        self.layout.endpoints.unlink(missing_ok=True)


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
        height = _rpc(rpc_url, timeout=2).eth.block_number
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
        pid=_read_pid(layout, "devnet") or os.getpid(),
        witnesses=[{str(k): str(v) for k, v in w.items()} for w in endpoints.get("witnesses", [])],
    )


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`_Stopped` once; later signals are ignored while we clean up."""

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Stopped

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(
    settings: DevnetSettings,
    *,
    on_ready: Callable[[NetworkInfo], None],
    on_step: Callable[[str], None] | None = None,
) -> int:
    """Run the devnet in this process until SIGINT/SIGTERM (exit code 0) or a child dies (1)."""
    layout = Layout(settings.dir.resolve())
    layout.check_usable()
    other = running_pid(layout)
    if other is not None and other != os.getpid():
        raise DevnetError(f"a devnet already runs over {layout.root} (pid {other}); `provenance devnet down`")
    _clear_stale(layout, settings.stop_timeout)
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)  # keys and tokens inside
    _write_pid(layout, "devnet", os.getpid())
    net = Devnet(settings=settings, on_step=on_step)
    try:
        with _signals_stop():
            try:
                net.start()
                on_ready(describe(layout))
                while (dead := net.dead_child()) is None:
                    time.sleep(0.2)
                log = layout.node_dir / "node.log" if dead == "node" else layout.log(dead)
                raise DevnetError(f"the {dead} exited unexpectedly; see {log}: {_tail(log, 500)}")
            except _Stopped:
                return 0
            finally:
                net.stop()
    finally:
        layout.pid_file("devnet").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # left only if something else was put there
            layout.run_dir.rmdir()


def _settings_env(settings: DevnetSettings) -> dict[str, str]:
    env = dict(os.environ)
    values = settings.model_dump()
    values["dir"] = settings.dir.resolve()  # the supervisor runs from the repository root
    for key, value in values.items():
        name = f"PROV_DEVNET_{key.upper()}"
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def up_detached(settings: DevnetSettings) -> NetworkInfo:
    """Start the supervisor in a session of its own (it outlives this process); return once it is ready."""
    layout = Layout(settings.dir.resolve())
    layout.check_usable()
    other = running_pid(layout)
    if other is not None:
        raise DevnetError(f"a devnet already runs over {layout.root} (pid {other}); `provenance devnet down`")
    _clear_stale(layout, settings.stop_timeout)
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)  # keys and tokens inside
    log_path = layout.log("devnet")
    log = log_path.open("ab")
    proc = subprocess.Popen(  # our own module, fixed argv
        [sys.executable, "-m", "devnet", "up", "--foreground", "--quiet"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_settings_env(settings),
        cwd=REPO_ROOT,
        start_new_session=True,  # Ctrl-C or a closed terminal must not reach it
    )
    log.close()
    deadline = time.monotonic() + settings.start_timeout + 30  # a first run deploys every contract
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DevnetError(f"the devnet exited with {proc.returncode}: {_tail(log_path, 1500)}")
            if layout.endpoints.exists() and running_pid(layout) == proc.pid:
                return describe(layout)
            time.sleep(0.2)
    except KeyboardInterrupt:
        # Ctrl-C does not reach the supervisor (its own session): stop it rather than leave it half up.
        _terminate(proc.pid, 2 * settings.stop_timeout + 5)
        raise DevnetError("interrupted: the devnet was stopped") from None
    _terminate(proc.pid, settings.stop_timeout)
    raise DevnetError(f"the devnet was not ready within {settings.start_timeout + 30:.0f} s; see {log_path}")


def down(settings: DevnetSettings) -> list[str]:
    """Stop a running devnet (its supervisor stops its children); return what was stopped."""
    layout = Layout(settings.dir.resolve())
    stopped: list[str] = []
    pid = running_pid(layout)
    if pid is not None:
        # The supervisor stops the gateway and the node within stop_timeout each before it exits.
        _terminate(pid, 2 * settings.stop_timeout + 5)
        stopped.append("devnet")
    for name in layout.children():  # orphans of a supervisor that was killed outright
        child = _read_pid(layout, name)
        if child is not None and _ours(name, child):
            _terminate(child, settings.stop_timeout)
            stopped.append(name)
    if layout.run_dir.exists():
        shutil.rmtree(layout.run_dir)
    return stopped


def _manifest_rpc(layout: Layout) -> str | None:
    try:
        return Manifest.load(layout.manifest).rpc_url
    except ProvenanceError:  # no manifest, or not one
        return None


def status(settings: DevnetSettings) -> list[ServiceStatus]:
    """The supervisor, node and gateway: running or not, and whether their endpoints answer."""
    layout = Layout(settings.dir.resolve())
    try:
        endpoints: dict[str, Any] = json.loads(layout.endpoints.read_text("utf-8"))
    except (OSError, ValueError):
        endpoints = {}
    result: list[ServiceStatus] = []
    pid = running_pid(layout)
    result.append(ServiceStatus(name="devnet", pid=pid, running=pid is not None, detail=str(layout.root)))

    node_pid = _read_pid(layout, "node")
    node_running = node_pid is not None and _ours("node", node_pid)
    rpc_url = endpoints.get("rpc_url") or _manifest_rpc(layout) or f"http://{HOST}:{settings.rpc_port}"
    healthy, detail = False, "no answer"
    try:
        w3 = _rpc(str(rpc_url), timeout=2)
        healthy, detail = True, f"chain {w3.eth.chain_id}, height {w3.eth.block_number}"
    except Exception:  # noqa: S110 - any failure means "not answering"
        pass
    result.append(
        ServiceStatus(
            name="node",
            pid=node_pid if node_running else None,
            running=node_running,
            url=str(rpc_url),
            healthy=healthy,
            detail=detail,
        )
    )

    gw_pid = _read_pid(layout, "gateway")
    gw_running = gw_pid is not None and _ours("gateway", gw_pid)
    gw_url = endpoints.get("gateway_url") or f"http://{HOST}:{settings.gateway_port}"
    try:
        response = httpx.get(f"{gw_url}/healthz", timeout=2.0)
        gw_healthy, gw_detail = response.status_code == 200, f"/healthz {response.status_code}"
    except httpx.HTTPError:
        gw_healthy, gw_detail = False, "no answer"
    result.append(
        ServiceStatus(
            name="gateway",
            pid=gw_pid if gw_running else None,
            running=gw_running,
            url=str(gw_url),
            healthy=gw_healthy,
            detail=gw_detail,
        )
    )
    for w in endpoints.get("witnesses", []):
        label = witnesses.PREFIX + str(w["org"])
        pid = _read_pid(layout, label)
        running = pid is not None and _ours(label, pid)
        try:
            held = httpx.get(f"{w['url']}/healthz", timeout=2.0).json()["logs"]
            healthy, detail = True, ", ".join(f"cosigned {lg['origin']} size {lg['size']}" for lg in held)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            healthy, detail = False, "no answer"
        result.append(
            ServiceStatus(
                name=label,
                pid=pid if running else None,
                running=running,
                url=str(w["url"]),
                healthy=healthy,
                detail=detail,
            )
        )
    return result


def reset(settings: DevnetSettings) -> bool:
    """Stop the devnet and delete its folder; False if there was nothing to delete."""
    layout = Layout(settings.dir.resolve())
    if not layout.root.exists():
        return False
    if not layout.looks_like_devnet():
        raise DevnetError(f"{layout.root} does not look like a devnet folder; not deleting it")
    down(settings)
    shutil.rmtree(layout.root)
    return True
