"""The network manifest (``manifest.json``): the chain, its contracts, the organisations and where their
keys are. ``devnet/deploy.py`` writes it; the gateway, the SDK's devnet client and ``provenance audit`` read
it, all through :class:`Manifest`. Secret keys live in files next to it (mode 0600); the manifest only names
them, relative to its own folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.crypto import SM2PrivateKey, SM2PublicKey
from provenance.domains import kinds_document
from provenance.errors import FormatError, NotFound
from provenance.files import read_bytes
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import load_json

if TYPE_CHECKING:  # eth_account is loaded only when a transaction account is read
    from eth_account.signers.local import LocalAccount

MANIFEST_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class ManifestOrg:
    """A registered organisation as the manifest records it: the organisation (:meth:`entry`) and where its
    transaction account and SM2 key are (paths relative to the manifest)."""

    id: str
    role: str
    name: str
    account: str
    account_key_file: str
    sm2_key_file: str
    public_key: str  # SM2 SubjectPublicKeyInfo PEM
    datasets: list[str] = field(default_factory=list)
    stations: list[str] = field(default_factory=list)

    def entry(self, *, extra_keys: tuple[str, ...] = ()) -> OrgEntry:
        """The organisation with its record-signing key (and ``extra_keys``, PEM), unbounded in time."""
        pems = (self.public_key, *extra_keys)
        keys = tuple(OrgKey(public_key=SM2PublicKey.from_pem(p), pem=p) for p in pems)
        return OrgEntry(org_id=self.id, role=self.role, name=self.name, keys=keys)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Everything a client of the network needs, as written to ``manifest.json``."""

    chain_id: int
    rpc_url: str
    engine: str
    contracts: dict[str, str]
    committee: list[str]
    orgs: list[ManifestOrg]
    log: dict[str, str]  # origin, key_name, key_file, public_key, operator_org
    created_at: str
    path: Path | None = None
    version: int = MANIFEST_VERSION
    # One per witness: org, name (its key name), key_file (its SM2 key), public_key (PEM)
    witnesses: list[dict[str, str]] = field(default_factory=list)
    witness_quorum: int = 0
    # The chain's SM2 sealing keys (PEM; our node's genesis validators), pinned by the trust file.
    validators: list[str] = field(default_factory=list)
    # The id of the network key (provenance.network_key.key_id; never the key): a gateway started with
    # another key file refuses to start. Empty in a manifest written before network keys.
    network_key_id: str = ""

    def find(self, org: str) -> ManifestOrg | None:
        """The entry of organisation ``org``, if the manifest has one."""
        return next((entry for entry in self.orgs if entry.id == org), None)

    def org(self, org: str) -> ManifestOrg:
        """The entry of organisation ``org`` (KeyError if absent)."""
        entry = self.find(org)
        if entry is None:
            raise KeyError(org)
        return entry

    def contract(self, name: str) -> str:
        """The address of contract ``name``; a FormatError naming it when the manifest has none."""
        address = self.contracts.get(name)
        if not isinstance(address, str):
            raise FormatError(f"manifest {self.path} names no {name}", details={"missing": [name]})
        return address

    def resolve(self, relative: str) -> Path:
        """A path named in the manifest, relative to the manifest's folder."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return base / relative

    def account(self, org: str) -> LocalAccount:
        """The transaction account of ``org`` (reads its key file)."""
        from eth_account import Account

        key = self.resolve(self.org(org).account_key_file).read_text("ascii").strip()
        acct: LocalAccount = Account.from_key(key)
        return acct

    def sm2_key(self, org: str) -> SM2PrivateKey:
        """The SM2 record-signing key of ``org`` (reads its key file)."""
        entry = self.find(org)
        if entry is None:
            raise NotFound(f"organisation '{org}' is not in the manifest {self.path}")
        return SM2PrivateKey.from_pem(read_bytes(self.resolve(entry.sm2_key_file), what="SM2 key"))

    def log_key(self) -> SM2PrivateKey:
        """The log's SM2 checkpoint-signing key."""
        return SM2PrivateKey.from_pem(read_bytes(self.resolve(self.log["key_file"]), what="log key"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``path`` left out)."""
        return {
            "version": self.version,
            "engine": self.engine,
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "contracts": self.contracts,
            "committee": self.committee,
            "log": self.log,
            "orgs": [asdict(o) for o in self.orgs],
            "created_at": self.created_at,
            "witnesses": self.witnesses,
            "witness_quorum": self.witness_quorum,
            "validators": self.validators,
        } | ({"network_key_id": self.network_key_id} if self.network_key_id else {})

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read ``manifest.json``: FileUnreadable when it cannot be read, FormatError when it is not one."""
        p = Path(path)
        return cls.from_dict(load_json(read_bytes(p, what="manifest"), what="manifest"), path=p)

    @classmethod
    def from_dict(cls, data: Any, *, path: Path | None = None) -> Manifest:
        """A manifest from its JSON form (FormatError naming what is wrong)."""
        where = f"manifest {path}" if path is not None else "manifest"
        if not isinstance(data, Mapping):
            raise FormatError(f"{where} is not a JSON object")
        if data.get("version") != MANIFEST_VERSION:
            raise FormatError(f"{where}: version {data.get('version')!r}, expected {MANIFEST_VERSION}")
        if not isinstance(data.get("contracts"), Mapping):
            raise FormatError(f"{where} has no 'contracts' object")
        try:
            return cls(
                version=data["version"],
                engine=data["engine"],
                chain_id=int(data["chain_id"]),
                rpc_url=str(data["rpc_url"]),
                contracts={str(k): v for k, v in data["contracts"].items()},
                committee=list(data["committee"]),
                log=dict(data["log"]),
                orgs=[_org(o, i, where) for i, o in enumerate(data["orgs"])],
                created_at=data["created_at"],
                path=path,
                witnesses=list(data.get("witnesses", [])),
                witness_quorum=int(data.get("witness_quorum", 0)),
                validators=list(data.get("validators", [])),
                network_key_id=str(data.get("network_key_id", "")),
            )
        except KeyError as exc:
            raise FormatError(f"{where} is malformed: it lacks {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{where} is malformed: {exc}") from exc

    def trust_dict(self) -> dict[str, Any]:
        """The trust file (``provenance verify --trust``): organisations' keys (a witness's key among its
        organisation's, as OrgRegistry holds it), the log key, the witness policy and the installed domains'
        kind -> roles table."""
        witness_keys: dict[str, list[str]] = {}
        for w in self.witnesses:
            witness_keys.setdefault(w["org"], []).append(w["public_key"])
        doc: dict[str, Any] = {
            "version": 1,
            "orgs": [o.entry(extra_keys=tuple(witness_keys.get(o.id, ()))).to_dict() for o in self.orgs],
            "logs": [
                {
                    "name": self.log["key_name"],
                    "origin": self.log["origin"],
                    "public_key": self.log["public_key"],
                }
            ],
            "chain": {
                "chain_id": self.chain_id,
                "org_registry": self.contracts["OrgRegistry"],
                "provenance_log": self.contracts["ProvenanceLog"],
                "rpc_url": self.rpc_url,
            }
            | ({"validators": [{"public_key": pem} for pem in self.validators]} if self.validators else {}),
            "kinds": kinds_document(),
        }
        if self.witnesses and self.witness_quorum:
            doc["witnesses"] = {
                "quorum": self.witness_quorum,
                "keys": [
                    {"name": w["name"], "org": w["org"], "public_key": w["public_key"]}
                    for w in self.witnesses
                ],
            }
        return doc


_ORG_FIELDS = {f.name: f for f in fields(ManifestOrg)}
_ORG_REQUIRED = [n for n, f in _ORG_FIELDS.items() if f.default is MISSING and f.default_factory is MISSING]


def _org(o: Any, index: int, where: str) -> ManifestOrg:
    if not isinstance(o, Mapping):
        raise FormatError(f"{where} is malformed: organisation {index} is not an object")
    missing = [n for n in _ORG_REQUIRED if n not in o]
    unknown = sorted(set(o) - set(_ORG_FIELDS))
    if missing or unknown:
        raise FormatError(
            f"{where} is malformed: organisation {index} lacks {', '.join(missing) or 'nothing'}"
            f"{', has unknown ' + ', '.join(unknown) if unknown else ''}",
            details={"missing": missing, "unexpected": unknown},
        )
    return ManifestOrg(**o)
