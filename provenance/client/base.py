"""What the sync and async clients share: the organisation's signer, the verifier, the devnet factory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provenance.abc import Signer
from provenance.access_code import AccessCode
from provenance.client.api import GatewayProofs
from provenance.errors import NotFound, ProvenanceError
from provenance.files import read_text
from provenance.log.merkle import items_root
from provenance.manifest import Manifest
from provenance.records import Envelope, SignedRecord, canonical_bytes, sign_envelope
from provenance.verification.trust import TrustStore
from provenance.verification.verify import AnchorChecker, Verifier


class ClientBase:
    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        org: str | None = None,
        signer: Signer | None = None,
        trust: TrustStore | None = None,
        anchor_checker: AnchorChecker | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.org = org
        self._signer = signer
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.verifier = Verifier(trust=trust, anchor_checker=anchor_checker)

    def sign(
        self,
        *,
        kind: str,
        subject: str,
        payload: Any,
        prev: str | None = None,
        timestamp: str | None = None,
    ) -> SignedRecord:
        """Build an envelope for ``payload`` and sign it with this organisation's SM2 key."""
        if self._signer is None or self.org is None:
            raise ProvenanceError("this client has no organisation key: pass org= and signer=")
        env = Envelope.create(
            kind=kind, subject=subject, org=self.org, payload=payload, prev=prev, timestamp=timestamp
        )
        return sign_envelope(env, self._signer)

    def _batch(
        self,
        readings: Sequence[Mapping[str, Any]],
        *,
        mn: str,
        period_start: datetime,
        period_end: datetime,
        timestamp: str | None,
    ) -> tuple[SignedRecord, dict[str, Any]]:
        """An ``env.batch``: the head over ``readings`` (each in the JSON normal form of an ``env.reading``
        payload; a packet's is ``adapters.adapt("env.reading", packet).document()``), signed once."""
        head = {
            "mn": mn,
            "period_start": _second(period_start),
            "period_end": _second(period_end),
            "count": len(readings),
            "root": items_root([canonical_bytes(r) for r in readings]).hex(),
        }
        signed = self.sign(kind="env.batch", subject=f"station:{mn}", payload=head, timestamp=timestamp)
        return signed, {**head, "readings": list(readings)}

    def _prescription(
        self, medication_request: Mapping[str, Any], rx_id: str, prev: str | None, timestamp: str | None
    ) -> tuple[SignedRecord, dict[str, Any], AccessCode]:
        code = AccessCode.new()
        payload = code.attach(medication_request, rx_id)
        signed = self.sign(
            kind="rx.issue", subject=f"rx:{rx_id}", payload=payload, prev=prev, timestamp=timestamp
        )
        return signed, payload, code

    @staticmethod
    def _devnet_parts(org: str, root: str | Path, gateway: str | None) -> dict[str, Any]:
        root = Path(root)
        manifest = Manifest.load(root / "manifest.json")
        if manifest.find(org) is None:
            raise NotFound(f"organisation '{org}' is not in the devnet manifest")
        trust_path = root / "trust.json"
        # The devnet's own chain checks anchors live; the ProvenanceLog address is pinned from the manifest.
        from provenance.chain.anchor import ChainAnchorChecker

        base_url = gateway or "http://127.0.0.1:8000"
        token = read_text(root / "tokens" / f"{org}.token", what="token file").strip()
        checker = ChainAnchorChecker.from_rpc(
            manifest.rpc_url,
            contract=manifest.contract("ProvenanceLog"),
            proofs=GatewayProofs(base_url, token=token),
        )
        return {
            "base_url": base_url,
            "org": org,
            "token": token,
            "signer": manifest.sm2_key(org),
            "trust": TrustStore.load(trust_path) if trust_path.exists() else None,
            "anchor_checker": checker,
        }


def _second(at: datetime) -> str:
    """A batch period bound: RFC 3339 UTC in whole seconds (what ``anchorBatch`` takes)."""
    if at.tzinfo is None or at.microsecond:
        raise ProvenanceError("a batch period bound is an aware datetime in whole seconds")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
