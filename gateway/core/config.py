"""The gateway's settings: one pydantic-settings class, environment prefix ``PROV_GW_``."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from adapters.abc import DEFAULT_TIME_ZONE
from provenance.network_key import default_path as default_network_key_path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVNET_DIR = REPO_ROOT / ".devnet"
KEK_NAME = "gateway.kek"


class WitnessEndpoint(BaseModel):
    """A witness the gateway submits checkpoints to: its add-checkpoint URL prefix and verifier key."""

    url: str
    vkey: str = Field(description="the witness's verifier key string (docs/formats.md, witness cosignatures)")
    org: str = ""


class GatewaySettings(BaseSettings):
    """Every knob of the gateway; the defaults run against ``make run``'s devnet with zero configuration."""

    model_config = SettingsConfigDict(env_prefix="PROV_GW_", extra="ignore")

    database_url: str = f"sqlite:///{DEVNET_DIR / 'gateway.db'}"
    manifest_path: Path = DEVNET_DIR / "manifest.json"
    # Defaults to the manifest's; override when the node is reached through another address.
    rpc_url: str | None = None
    # The node's JSON-RPC URL as a browser reaches it: the /verify page looks anchors and keys up there
    # itself (GET /api/v1/chain); default rpc_url (the manifest's), which suits a node on the same host.
    public_rpc_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # The log's SM2 key; defaults to the file the manifest names.
    log_key_path: Path | None = None
    log_key_next_path: Path | None = Field(
        default=None,
        description="the log's next SM2 key during a rotation (docs/design/gateway.md, 'Log key rotation'): "
        "registered for the log operator in OrgRegistry first; while set, every checkpoint and receipt is "
        "signed by both keys. At the switch it becomes log_key_path and this is unset",
    )
    kek_file: Path | None = Field(
        default=None,
        description="the key-encryption key that wraps every record's SM4 data key: 32 hex digits (128 "
        "bits), generated (0600) on first start if missing; default gateway.kek beside a SQLite database "
        "file, else .devnet/gateway.kek. The operator's secret, like a TLS key: never in the database",
    )
    network_key_file: Path | None = Field(
        default=None,
        description="the network key (64 hex digits, 0600): the chain keys each dispensed box under "
        "HMAC-SM3 with it, so that a code printed on a box finds nothing on the public chain. One per "
        "network, the same file at every gateway of it (and with its auditors and regulators); default "
        "keys/network.key beside the manifest (the devnet writes it). Never in the database or a log",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="the gateway's public base URL (https://prov.example.cn): the gateway's redirects "
        "point there; unset, they are relative paths. Never built from the request's Host header",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="a bearer token for Prometheus scrapes of /metrics (at least 32 characters); "
        "besides it, /metrics answers auditors', regulators' and log operators' API tokens only",
    )
    monitor_token: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="a bearer token for witnesses' and monitors' reads of the tiles' entry bundles "
        "(/tiles/tile/entries/…, the signed envelopes; at least 32 characters); besides it, they answer "
        "auditors', regulators' and log operators' API tokens only. Hash tiles and the checkpoint are public",
    )

    checkpoint_interval: float = Field(
        default=1.0, gt=0, description="seconds between signed checkpoints, at most"
    )
    sequencer_batch: int = Field(default=2000, ge=1, description="records appended per log transaction")
    sequencer_idle: float = Field(
        default=0.2,
        gt=0,
        description="seconds between log appends when idle (each append is one write transaction; "
        "records wait at most this long before the next checkpoint can cover them)",
    )
    worker_idle: float = Field(
        default=1.0,
        gt=0,
        description="seconds between the anchorer's and the chain caller's polls when nothing woke them "
        "(a new checkpoint wakes the anchorer, a workflow record the chain caller)",
    )
    chain_retry: float = Field(
        default=0.5, gt=0, description="seconds before retrying the chain after a failure"
    )
    lease_poll: float = Field(
        default=0.5,
        gt=0,
        le=2.0,
        description="PostgreSQL: seconds between an instance's polls of the worker lease (one instance "
        "runs the workers; another takes over within about this long after its owner dies)",
    )
    registry_poll: float = Field(default=0.25, gt=0, description="seconds between OrgRegistry event polls")
    backlog_limit: int = Field(
        default=100_000, ge=1, description="records accepted but not anchored before 503"
    )
    retry_after: int = Field(default=2, ge=1, description="Retry-After seconds on 503")
    storage_retry_after: int = Field(
        default=30,
        ge=1,
        description="Retry-After seconds when the database cannot store a write (STORAGE_FULL, "
        "STORAGE_WRITE_FAILED): freeing space or restoring a permission takes a person, not 2 s",
    )
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=4096,
        description="bytes a request's line and headers may take (431 and the connection closes beyond)",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="seconds a client has, from connecting or its request's first byte, to send the whole "
        "request head (408 and the connection closes after): bounds connections held by partial heads",
    )
    body_timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds a client has to send a request body once its head arrived (408 "
        "BODY_TIMEOUT and the connection closes after): bounds connections held by slow bodies",
    )
    keep_alive_timeout: int = Field(
        default=5, ge=1, description="seconds an idle keep-alive connection stays open"
    )
    max_json_depth: int = Field(default=64, ge=4)
    max_bulk: int = Field(default=1000, ge=1)
    max_merge_delay: int = Field(
        default=60,
        ge=1,
        le=366 * 24 * 3600,
        description="seconds within which the gateway promises, in each signed acceptance receipt, that an "
        "accepted record is in the log under a signed checkpoint (RFC 6962's maximum merge delay)",
    )
    max_clock_skew: float = Field(
        default=300.0, ge=0, description="seconds a record may be dated in the future"
    )
    fhir_time_zone: str = Field(
        default=DEFAULT_TIME_ZONE,
        description="the IANA time zone a FHIR date without a time is read in (2026-11-28 is that calendar "
        "day there: a prescription valid until 2026-11-28 expires at the end of it), e.g. Asia/Shanghai",
    )
    page_size_max: int = Field(default=500, ge=1)
    token_cache_ttl: float = Field(default=5.0, ge=0)
    access_log: bool = Field(default=False, description="uvicorn's line per request (costs ~5% at load)")
    start_workers: bool = True
    api_only: bool = Field(
        default=False,
        description="serve the API beside the owner of the workers on the same database (SQLite: on its "
        "file, taking no instance lock; PostgreSQL: never taking the lease): the registry watcher and a poll "
        "of the shared gauges (every lease_poll s) run here, the log's workers never",
    )
    witnesses: list[WitnessEndpoint] = Field(
        default=[],
        description="witnesses to submit each new checkpoint to (JSON list of {url, vkey, org}); none: "
        "checkpoints are published with the log's signature only",
    )
    witness_quorum: int = Field(
        default=0,
        ge=0,
        description="cosignatures a checkpoint needs before /tiles/checkpoint publishes it and bundles "
        "prefer it (0: publish the newest at once)",
    )
    witness_timeout: float = Field(default=5.0, gt=0, description="seconds to wait for a witness's answer")
    witness_retry: float = Field(
        default=1.0, gt=0, description="seconds before a witness that failed or was down is tried again"
    )

    @field_validator("fhir_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"not an IANA time zone: {value!r}") from exc
        return value

    @property
    def time_zone(self) -> ZoneInfo:
        """``fhir_time_zone`` as a zone."""
        return ZoneInfo(self.fhir_time_zone)

    @property
    def network_key_path(self) -> Path:
        """The network key's file: ``network_key_file``, else ``keys/network.key`` beside the manifest."""
        return self.network_key_file or default_network_key_path(self.manifest_path)

    @property
    def kek_path(self) -> Path:
        """The key-encryption key's file: ``kek_file``, else ``gateway.kek`` in the gateway's data folder."""
        if self.kek_file is not None:
            return self.kek_file
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).parent / KEK_NAME
        return DEVNET_DIR / KEK_NAME
