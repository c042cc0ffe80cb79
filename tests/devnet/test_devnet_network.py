"""devnet.network and the supervisor without processes: state checks, reset safety, addresses, settings."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import rlp
from eth_account import Account
from eth_utils import keccak

from devnet.config import DevnetSettings
from devnet.embedded import create_address
from devnet.layout import DevnetError, Layout
from devnet.network import Network, engine_accounts
from devnet.supervisor import reset, up_detached


def test_create_address_matches_rlp_rule() -> None:
    # The well-known first contract of anvil's account 0.
    assert create_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", 0) == (
        "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    )
    sender = Account.create().address
    expected = keccak(rlp.encode([bytes.fromhex(sender[2:]), 7]))[12:]
    assert create_address(sender, 7).lower() == "0x" + expected.hex()


def test_engine_accounts_are_created_once_and_private(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    first = engine_accounts(layout)
    again = engine_accounts(layout)
    assert [a.address for a in first] == [a.address for a in again]
    assert len({a.address for a in first}) == 4
    for path in layout.keys_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unfinished_first_run_starts_over(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.node_dir.mkdir(parents=True)
    (layout.node_dir / "genesis.json").write_text("{}")
    layout.keys_dir.mkdir()
    (layout.keys_dir / "hospital-1.sm2.pem").write_text("half-made")
    net = Network(settings=DevnetSettings(dir=tmp_path))
    net.check_state()
    assert not layout.node_dir.exists() and not layout.keys_dir.exists()
    assert "did not finish" in net.notes[0]


def test_engine_mismatch_is_refused(tmp_path: Path) -> None:
    manifest = {
        "version": 1,
        "engine": "anvil",
        "chain_id": 31337,
        "rpc_url": "http://127.0.0.1:1",
        "contracts": {},
        "committee": [],
        "log": {},
        "orgs": [],
        "created_at": "2026-01-01T00:00:00Z",
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DevnetError, match="holds an anvil network"):
        Network(settings=DevnetSettings(dir=tmp_path, engine="embedded")).check_state()


def test_reset_refuses_a_folder_that_is_not_a_devnet(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DevnetError, match="does not look like a devnet"):
        reset(DevnetSettings(dir=tmp_path))
    assert (tmp_path / "precious.txt").exists()
    assert reset(DevnetSettings(dir=tmp_path / "absent")) is False


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROV_DEVNET_ENGINE", "anvil")
    monkeypatch.setenv("PROV_DEVNET_RPC_PORT", "9545")
    monkeypatch.setenv("PROV_DEVNET_DIR", str(tmp_path))
    s = DevnetSettings()
    assert (s.engine, s.rpc_port, s.gateway_port, s.dir) == ("anvil", 9545, 8000, tmp_path)


def test_up_refuses_a_folder_that_is_not_a_devnet(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DevnetError, match="holds no devnet"):
        up_detached(DevnetSettings(dir=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]
