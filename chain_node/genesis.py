"""Genesis file: chain id, validator SM2 key, admins, allowlist, optional OrgRegistry, funded accounts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, field_validator

from provenance.chain.seal import validator_id
from provenance.crypto import SM2PrivateKey, SM2PublicKey

VALIDATOR_KEY_FILE = "validator.pem"
DEFAULT_CHAIN_ID = 20231
DEFAULT_GAS_LIMIT = 60_000_000
DEFAULT_BASE_FEE = 1_000_000_000
DEFAULT_BALANCE = 10**24  # 1,000,000 ether-units: test funds on a permissioned chain


def _addr(v: str) -> str:
    return to_checksum_address(v)


class Validator(BaseModel):
    """A block sealer named in genesis."""

    model_config = ConfigDict(frozen=True)
    id: str
    public_key_pem: str

    def public_key(self) -> SM2PublicKey:
        """The validator's SM2 public key."""
        return SM2PublicKey.from_pem(self.public_key_pem.encode())


class Genesis(BaseModel):
    """The genesis file (JSON)."""

    model_config = ConfigDict(frozen=True)
    chain_id: int = DEFAULT_CHAIN_ID
    timestamp: int = Field(default_factory=lambda: int(time.time()))
    gas_limit: int = DEFAULT_GAS_LIMIT
    base_fee_per_gas: int = DEFAULT_BASE_FEE
    validators: list[Validator]
    admins: list[str] = Field(default_factory=list)  # may create contracts; always permitted
    allowlist: list[str] = Field(default_factory=list)  # may send transactions
    permission_contract: str | None = None  # OrgRegistry: isPermitted(address) -> bool
    alloc: dict[str, int] = Field(default_factory=dict)  # address -> balance (wei)

    @field_validator("admins", "allowlist")
    @classmethod
    def _checksum_list(cls, v: list[str]) -> list[str]:
        return [_addr(a) for a in v]

    @field_validator("alloc")
    @classmethod
    def _checksum_alloc(cls, v: dict[str, int]) -> dict[str, int]:
        return {_addr(a): int(b) for a, b in v.items()}

    @field_validator("permission_contract")
    @classmethod
    def _checksum_opt(cls, v: str | None) -> str | None:
        return None if v is None else _addr(v)

    @classmethod
    def load(cls, path: Path) -> Genesis:
        """Read a genesis file."""
        return cls.model_validate_json(path.read_bytes())

    def dump(self) -> bytes:
        """Canonical-enough JSON bytes (sorted keys), stored in the node to detect a swapped genesis."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2).encode()


def write_private_key(path: Path, key: SM2PrivateKey) -> None:
    """Write a PEM private key readable by the owner only (0600 from creation, no window)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.to_pem())
    os.chmod(path, 0o600)


def init_genesis(
    *,
    out: Path,
    data_dir: Path,
    alloc: list[str],
    admins: list[str],
    chain_id: int = DEFAULT_CHAIN_ID,
    permission_contract: str | None = None,
) -> Genesis:
    """Make a validator key in ``data_dir`` and write a genesis that funds and permits the accounts."""
    key_path = data_dir / VALIDATOR_KEY_FILE
    if key_path.exists():
        key = SM2PrivateKey.from_pem(key_path.read_bytes())
    else:
        key = SM2PrivateKey.generate()
        write_private_key(key_path, key)
    pub = key.public_key()
    funded = list(dict.fromkeys([_addr(a) for a in [*admins, *alloc]]))
    genesis = Genesis(
        chain_id=chain_id,
        validators=[Validator(id=validator_id(pub), public_key_pem=pub.to_pem().decode())],
        admins=admins,
        allowlist=funded,
        permission_contract=permission_contract,
        alloc=dict.fromkeys(funded, DEFAULT_BALANCE),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(genesis.dump())
    return genesis
