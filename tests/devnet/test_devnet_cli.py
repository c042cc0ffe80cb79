"""``provenance devnet`` with real processes: up --detach, status, down, resume, Ctrl-C, reset."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from web3 import HTTPProvider, Web3

from adapters.sharing import demo
from devnet.anvil import ANVIL_BIN
from devnet.config import DevnetSettings
from devnet.deploy import parse_role
from devnet.embedded import create_address, free_port
from devnet.layout import DevnetError, Layout
from devnet.network import ENGINE_ACCOUNTS
from devnet.solc import REPO_ROOT
from devnet.supervisor import down, status, up_detached
from provenance.chain.contracts import Role
from provenance.manifest import Manifest
from provenance.network_key import NETWORK_KEY_NAME, key_id, read_network_key
from tests.kit.data_life import INPUT_LIFE

pytestmark = pytest.mark.timeout(300)  # ~30 s on an idle machine; shared CI runners are slower

EXPECTED_ROLES = {
    Role.HOSPITAL: 2,
    Role.PHARMACY: 2,
    Role.DATA_OWNER: 1,
    Role.DATA_USER: 1,
    Role.ENV_BUREAU: 1,
    Role.MONITORING_STATION: 2,
    Role.PARTY_BRANCH: 1,
    Role.AUDITOR: 1,
    Role.REGULATOR: 1,
    Role.LOG_OPERATOR: 1,
    Role.PHARMACIST: 2,
    Role.INSURER: 1,
    Role.GAS_UTILITY: 2,
}


def devnet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROV_DEVNET_")}
    return subprocess.run(
        [sys.executable, "-m", "devnet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # zombies (exited, unreaped) count as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if pid_alive(p)]}"
        time.sleep(0.1)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("devnet") / "state"
    yield root
    devnet("down", "--dir", str(root), timeout=60)  # whatever a failed test left running


def _demo_dataset_life(layout: Layout, gw_port: int) -> None:
    """The first run recorded the demo dataset's life (devnet/demo.py), each call held by DataSharing."""
    auditor = {"Authorization": f"Bearer {layout.token_file('auditor').read_text().strip()}"}
    api = f"http://127.0.0.1:{gw_port}/api/v1"
    listed = httpx.get(f"{api}/subjects/dataset:{demo.DATASET}/records", headers=auditor, timeout=10)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [i["kind"] for i in items] == list(INPUT_LIFE)
    lineage = httpx.get(f"{api}/datasets/{demo.DERIVED}/lineage", headers=auditor, timeout=10).json()
    assert [n["dataset"] for n in lineage["ancestors"]] == [demo.DATASET]
    settlement = httpx.get(f"{api}/settlements/{demo.SETTLEMENT}", headers=auditor, timeout=10).json()
    assert settlement["status"] == "settled", settlement


def test_lifecycle(state: Path) -> None:
    layout = Layout(state)
    rpc_port, gw_port = free_port(), free_port()
    ports = ["--rpc-port", str(rpc_port), "--gateway-port", str(gw_port)]

    # First run: keys, genesis, node, contracts, organisations, tokens, gateway; detached.
    done = devnet("up", "--detach", "--dir", str(state), *ports)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"http://127.0.0.1:{rpc_port}" in done.stdout
    assert f"http://127.0.0.1:{gw_port}/verify" in done.stdout
    assert "created" in done.stdout

    shown = devnet("status", "--dir", str(state))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.count("running") == 6  # supervisor, node, gateway and the three witnesses
    assert shown.stdout.count("witness-") == 3

    w3 = Web3(HTTPProvider(f"http://127.0.0.1:{rpc_port}"))
    height = w3.eth.block_number
    assert height > 0
    manifest = Manifest.load(layout.manifest)
    assert manifest.rpc_url == f"http://127.0.0.1:{rpc_port}"
    counts: dict[Role, int] = {}
    for org in manifest.orgs:
        counts[parse_role(org.role)] = counts.get(parse_role(org.role), 0) + 1
    assert counts == EXPECTED_ROLES
    assert len(manifest.committee) == 3
    registry = manifest.contracts["OrgRegistry"]
    for name in manifest.contracts.values():
        assert w3.eth.get_code(Web3.to_checksum_address(name))

    # The devnet's own accounts, not the public test mnemonic; the registry is the deployer's first contract.
    deployer = layout.account_key(ENGINE_ACCOUNTS[0]).read_text().strip()
    deployer_address = Web3().eth.account.from_key(deployer).address
    assert create_address(deployer_address, 0) == registry
    assert deployer_address != "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

    secrets = [*layout.keys_dir.glob("*.tx.key"), *layout.keys_dir.glob("*.sm2.pem")]
    secrets += [layout.node_dir / "validator.pem", *layout.tokens_dir.glob("*.token"), layout.gateway_kek]
    # The network key the gateway keys boxes on chain with, named (never held) by the manifest.
    network_key = layout.keys_dir / NETWORK_KEY_NAME
    assert manifest.network_key_id == key_id(read_network_key(network_key))
    secrets.append(network_key)
    assert len(list(layout.tokens_dir.glob("*.token"))) == len(manifest.orgs)
    assert {p.name: mode(p) for p in secrets} == {p.name: 0o600 for p in secrets}

    assert httpx.get(f"http://127.0.0.1:{gw_port}/healthz", timeout=5).status_code == 200
    token = layout.token_file("hospital-1").read_text().strip()
    assert token.startswith("spt_")
    _demo_dataset_life(layout, gw_port)

    with pytest.raises(DevnetError, match="already runs"):  # in process: a CLI start costs 1-2 s
        up_detached(DevnetSettings(dir=state, rpc_port=rpc_port, gateway_port=gw_port))

    pids = [int(layout.pid_file(n).read_text()) for n in ("devnet", *layout.children())]
    stopped = devnet("down", "--dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    wait_gone(pids, timeout=5)
    assert not layout.run_dir.exists()
    assert not any(service.running for service in status(DevnetSettings(dir=state)))

    # Second run, in the foreground on other ports: the same network resumes; Ctrl-C stops it cleanly.
    rpc_port, gw_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "devnet", "up", "--dir", str(state), "--rpc-port", str(rpc_port)]
    fg = subprocess.Popen(
        [*cmd, "--gateway-port", str(gw_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
        start_new_session=True,  # a process group of its own, as a terminal gives `make run`
    )
    try:
        assert fg.stdout is not None
        printed = []
        for line in fg.stdout:  # until the summary is out (EOF if it died; pytest-timeout if it hangs)
            printed.append(line)
            if "Press Ctrl-C" in line:
                break
        assert fg.poll() is None, "".join(printed)
        resumed = Manifest.load(layout.manifest)
        assert resumed.contracts == manifest.contracts
        assert resumed.created_at == manifest.created_at
        assert resumed.rpc_url == f"http://127.0.0.1:{rpc_port}"
        w3 = Web3(HTTPProvider(resumed.rpc_url))
        assert w3.eth.block_number >= height
        assert layout.token_file("hospital-1").read_text().strip() == token
        assert json.loads(layout.endpoints.read_text())["created"] is False
        children = [int(layout.pid_file(n).read_text()) for n in ("node", "gateway")]

        os.killpg(fg.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets SIGINT
        rest, _ = fg.communicate(timeout=40)
    finally:
        if fg.poll() is None:
            os.killpg(fg.pid, signal.SIGKILL)
    output = "".join(printed) + rest
    assert fg.returncode == 0, output
    assert "resumed" in output and "devnet stopped" in output
    wait_gone(children, timeout=5)
    assert not layout.pid_file("devnet").exists()

    removed = devnet("reset", "--yes", "--dir", str(state))
    assert removed.returncode == 0, removed.stderr
    assert not state.exists()


@pytest.mark.skipif(not ANVIL_BIN.exists(), reason="anvil not installed (make setup)")
def test_anvil_network_is_recreated_on_each_up(tmp_path: Path) -> None:
    # In process and without the gateway (both covered above): this test is about the engine.
    root = tmp_path / "anvil"
    settings = DevnetSettings(dir=root, engine="anvil", rpc_port=free_port(), start_gateway=False)
    try:
        info = up_detached(settings)
        assert (info.engine, info.chain_id, info.created, info.gateway_url) == ("anvil", 31337, True, None)
        first = Manifest.load(Layout(root).manifest)
        assert {parse_role(o.role) for o in first.orgs} == set(EXPECTED_ROLES)
        assert down(settings) == ["devnet"]

        # anvil keeps no state: the next up deploys a new network (new organisation keys) in the folder.
        assert up_detached(settings).created
        second = Manifest.load(Layout(root).manifest)
        assert second.org("hospital-1").public_key != first.org("hospital-1").public_key
        down(settings)

        with pytest.raises(DevnetError, match=r"holds an\s+anvil network"):
            up_detached(DevnetSettings(dir=root, engine="embedded", rpc_port=free_port()))
    finally:
        down(settings)
