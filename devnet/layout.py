"""Where each piece of devnet state lives under the devnet folder (default ``.devnet/``, git-ignored):

node/            the embedded node's chain, genesis and SM2 validator key (0600)
keys/            secp256k1 transaction keys and SM2 record keys (0600), public PEMs
tokens/          one API token per organisation (0600)
manifest.json    chain, contracts, organisations (written by ``devnet.deploy``); trust.json beside it
gateway.db       the gateway's SQLite database
gateway.kek      the gateway's key-encryption key, which wraps the payloads' data keys (0600)
witness/         each witness's state
run/             pid files and endpoints.json of the running network; *.log beside it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devnet import witnesses
from devnet.deploy import MANIFEST_NAME, TRUST_NAME
from provenance.errors import ProvenanceError

HOST = "127.0.0.1"  # every devnet process listens on loopback only


class DevnetError(ProvenanceError, code="DEVNET_ERROR"):
    """The devnet cannot start, stop or find its state."""


class _Under:
    """A path of the layout: ``name`` below its root, or below another of its paths (``parent``)."""

    def __init__(self, name: str, parent: str = "root") -> None:
        self.name = name
        self.parent = parent

    def __get__(self, layout: Layout, owner: type | None = None) -> Path:
        base: Path = getattr(layout, self.parent)
        return base / self.name


@dataclass(frozen=True)
class Layout:
    """Where each piece of devnet state lives under the devnet directory."""

    root: Path

    node_dir = _Under("node")
    keys_dir = _Under("keys")
    tokens_dir = _Under("tokens")
    run_dir = _Under("run")
    manifest = _Under(MANIFEST_NAME)
    trust = _Under(TRUST_NAME)
    gateway_db = _Under("gateway.db")
    gateway_kek = _Under("gateway.kek")
    endpoints = _Under("endpoints.json", parent="run_dir")

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
