"""The witness's settings: one pydantic-settings class, environment prefix ``PROV_WITNESS_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVNET_DIR = REPO_ROOT / ".devnet"


class WitnessSettings(BaseSettings):
    """Every knob of one witness; the defaults name the devnet's folder, not a witness (set ``name``)."""

    model_config = SettingsConfigDict(env_prefix="PROV_WITNESS_", extra="ignore")

    name: str = Field(
        default="",
        description="the witness's key name (a schema-less URL), e.g. shancheng.devnet/witness/regulator",
    )
    org: str = Field(default="", description="the organisation that runs the witness (informative)")
    key_file: Path = Field(
        default=DEVNET_DIR / "keys" / "witness.sm2.pem",
        description="the witness's SM2 private key (PEM); its public key is registered in OrgRegistry",
    )
    trust_file: Path = Field(
        default=DEVNET_DIR / "trust.json",
        description="trust file whose 'logs' pin the logs witnessed: origin and SM2 log key (others: 404)",
    )
    state_file: Path = Field(
        default=DEVNET_DIR / "witness.db",
        description="SQLite file of the last cosigned checkpoint per log (written before every answer)",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8600, ge=1, le=65535)
    # HTTP limits (provenance/http_limits.py, as the gateway's): a request head's bytes (431 beyond) and
    # seconds (408), a body's seconds (408 BODY_TIMEOUT), an idle keep-alive connection's seconds
    max_header_bytes: int = Field(default=16 * 1024, ge=4096)
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=30.0, gt=0)
    keep_alive_timeout: int = Field(default=5, ge=1)
