"""A log as its tiles serve it, for the monitor's tests: real SM2-signed records in an SM3 tree, checkpoints
signed with an SM2 log key and cosigned by SM2 witness keys, tiles computed from the tree as the gateway
stores them."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from provenance.crypto import SM2PrivateKey
from provenance.errors import CheckpointInvalid
from provenance.log.checkpoint import Checkpoint, sign_checkpoint
from provenance.log.cosignature import WitnessKey, WitnessPolicy, cosign
from provenance.log.merkle import leaf_hash, root_from_leaf_hashes
from provenance.log.tiles import TILE_WIDTH, Tile, encode_bundle
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import Envelope, sign_envelope
from provenance.timestamps import format_timestamp
from provenance.verification.trust import LogKey, TrustStore

ORIGIN = "shancheng.test/log"
LOG_NAME = "shancheng-test-log"
LOG_KEY = SM2PrivateKey.generate()
ORG_KEYS = {"station-1": SM2PrivateKey.generate(), "station-2": SM2PrivateKey.generate()}
WITNESS_KEYS = [SM2PrivateKey.generate() for _ in range(3)]
WITNESSES = tuple(
    WitnessKey(name=f"shancheng.test/witness/{i}", public_key=k.public_key())
    for i, k in enumerate(WITNESS_KEYS)
)


def trust(*, policy: bool = False) -> TrustStore:
    orgs = {
        org: OrgEntry(
            org_id=org,
            role="monitoring_station",  # the entries are env.reading records
            keys=(OrgKey(public_key=k.public_key(), pem=k.public_key_pem().decode()),),
        )
        for org, k in ORG_KEYS.items()
    }
    log = LogKey(name=LOG_NAME, public_key=LOG_KEY.public_key(), pem="", origin=ORIGIN)
    witnesses = WitnessPolicy(witnesses=WITNESSES, quorum=2) if policy else None
    return TrustStore(orgs=orgs, logs=[log], witnesses=witnesses)


def signed_entry(i: int, org: str = "station-1", key: SM2PrivateKey | None = None) -> bytes:
    env = Envelope(
        kind="env.reading",  # type: ignore[arg-type]
        subject=f"station:MN{i:04d}",  # type: ignore[arg-type]
        org=org,  # type: ignore[arg-type]
        timestamp=format_timestamp(datetime.now(UTC)),
        nonce=secrets.token_hex(16),
        prev=None,
        payload_digest=leaf_hash(i.to_bytes(4, "big")).hex(),  # type: ignore[arg-type]
    )
    return sign_envelope(env, key or ORG_KEYS[org]).leaf_entry()


class ServedLog:
    """What a log serves: its entries as tiles, and a checkpoint (with cosignatures) at /checkpoint."""

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = list(entries)
        self.overrides: dict[str, bytes] = {}
        self.note = ""
        self.publish()

    @property
    def leaves(self) -> list[bytes]:
        return [leaf_hash(e) for e in self.entries]

    def publish(self, size: int | None = None, *, cosigners: tuple[int, ...] = (0, 1)) -> Checkpoint:
        size = len(self.entries) if size is None else size
        cp = Checkpoint(origin=ORIGIN, size=size, root=root_from_leaf_hashes(self.leaves[:size]))
        self.note = sign_checkpoint(cp, LOG_NAME, LOG_KEY) + "".join(
            cosign(cp.body(), WITNESSES[i].name, WITNESS_KEYS[i], timestamp=1) for i in cosigners
        )
        self.size = size
        return cp

    def fetch(self, path: str) -> bytes:
        if path in self.overrides:
            return self.overrides[path]
        if path == "checkpoint":
            return self.note.encode()
        tile = Tile.parse(path)
        if tile.entries:
            return encode_bundle(self.entries[tile.n * TILE_WIDTH : tile.n * TILE_WIDTH + tile.w])
        span = TILE_WIDTH**tile.level
        first = tile.n * TILE_WIDTH
        if (first + tile.w) * span > self.size:
            raise CheckpointInvalid(f"{path}: beyond the checkpoint")  # any project error: unreadable
        leaves = self.leaves
        return b"".join(
            root_from_leaf_hashes(leaves[(first + i) * span : (first + i + 1) * span]) for i in range(tile.w)
        )
