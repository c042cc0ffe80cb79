"""The gateway's clients: what sync :class:`Client` and async :class:`AsyncClient` share (the organisation's
signer, the verifier, the devnet factory), then each over its httpx client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from provenance.abc import Signer
from provenance.access_code import AccessCode
from provenance.client.api import (
    NOT_YET_LOGGED,
    AccessCodeArg,
    AnchorTimeout,
    Api,
    GatewayError,
    GatewayProofs,
    IssuedPrescription,
    Receipt,
    Request,
    pending_or,
)
from provenance.errors import AccessCodeDigestMissing, NotFound, ProvenanceError
from provenance.files import read_text
from provenance.listing import HistoryPages
from provenance.log.bundle import EvidenceBundle
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
        """Build an envelope for ``payload`` and sign it with this organisation's SM2 key (an ``rx.issue``
        carries its access code's digest: :meth:`Client.issue_prescription` makes the code and attaches it,
        else ACCESS_CODE_DIGEST_MISSING)."""
        if self._signer is None or self.org is None:
            raise ProvenanceError("this client has no organisation key: pass org= and signer=")
        if kind == "rx.issue" and not (isinstance(payload, Mapping) and AccessCode.attached(payload)):
            raise AccessCodeDigestMissing(
                "an rx.issue carries its access code's digest: use issue_prescription, or attach one "
                "(AccessCode.new().attach(resource, rx_id)) and print that code on the slip",
                details={"field": "extension"},
            )
        env = Envelope.create(
            kind=kind, subject=subject, org=self.org, payload=payload, prev=prev, timestamp=timestamp
        )
        return sign_envelope(env, self._signer)

    def _batch(
        self,
        readings: Sequence[Mapping[str, Any]],
        *,
        mn: str | None,
        logger: str | None,
        period_start: datetime,
        period_end: datetime,
        timestamp: str | None,
    ) -> tuple[SignedRecord, dict[str, Any]]:
        """A sensor batch, signed once: an ``env.batch`` of monitoring point ``mn`` (each reading in the JSON
        normal form of an ``env.reading`` payload; a packet's is ``adapters.adapt("env.reading",
        packet).document()``) or a ``gas.batch`` of data logger ``logger`` (gas readings as sent)."""
        if (mn is None) == (logger is None):
            raise ProvenanceError(
                "a batch names either a monitoring point (mn) or a gas data logger (logger)"
            )
        kind, member, source, prefix = (
            ("env.batch", "mn", mn, "station")
            if mn is not None
            else ("gas.batch", "logger", logger, "logger")
        )
        head = {
            member: source,
            "period_start": _second(period_start),
            "period_end": _second(period_end),
            "count": len(readings),
            "root": items_root([canonical_bytes(r) for r in readings]).hex(),
        }
        signed = self.sign(kind=kind, subject=f"{prefix}:{source}", payload=head, timestamp=timestamp)
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
        trust = TrustStore.load(trust_path) if trust_path.exists() else None
        checker = ChainAnchorChecker.from_rpc(
            manifest.rpc_url,
            contract=manifest.contract("ProvenanceLog"),
            proofs=GatewayProofs(base_url, token=token),
            seal_keys=trust.seal_keys if trust else (),
        )
        return {
            "base_url": base_url,
            "org": org,
            "token": token,
            "signer": manifest.sm2_key(org),
            "trust": trust,
            "anchor_checker": checker,
        }


class Client(ClientBase):
    """Synchronous client of the gateway."""

    def __init__(
        self, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._http = httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )

    @classmethod
    def devnet(cls, org: str, *, root: str | Path = ".devnet", gateway: str | None = None) -> Client:
        """A client for one demo organisation of a running devnet (reads its manifest, token and key)."""
        return cls(**cls._devnet_parts(org, root, gateway))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _do(self, req: Request) -> Any:
        resp = self._http.request(req.method, req.path, json=req.json, params=req.params, headers=req.headers)
        return Api.parse(resp)

    def submit(self, signed: SignedRecord, payload: Any, *, access_code: AccessCodeArg = None) -> Receipt:
        """Submit one signed record with its payload; the gateway answers 202 with the record id.
        ``access_code``: the prescription slip's, which an ``rx.dispense`` presents (never signed)."""
        return Api.receipt(self._do(Api.submit(signed, payload, access_code)))

    def submit_many(
        self,
        items: Sequence[tuple[SignedRecord, Any]],
        *,
        access_codes: Sequence[AccessCodeArg] | None = None,
    ) -> list[Receipt]:
        """Submit many records in one request (all or each, as the gateway reports per item);
        ``access_codes``: one per item (None where an item needs none)."""
        return Api.bulk(self._do(Api.submit_many(items, access_codes)))

    def submit_batch(
        self,
        readings: Sequence[Mapping[str, Any]],
        *,
        mn: str | None = None,
        logger: str | None = None,
        period_start: datetime,
        period_end: datetime,
        timestamp: str | None = None,
    ) -> Receipt:
        """Sign once and submit an ``env.batch`` of ``readings`` (JSON normal forms) of monitoring point
        ``mn``, or a ``gas.batch`` of data logger ``logger``, in [period_start, period_end) (aware, whole
        seconds); each reading then has its own bundle
        (``GET /api/v1/{env|gas}/batches/{id}/readings/{index}/bundle``)."""
        signed, payload = self._batch(
            readings,
            mn=mn,
            logger=logger,
            period_start=period_start,
            period_end=period_end,
            timestamp=timestamp,
        )
        return self.submit(signed, payload)

    def issue_prescription(
        self,
        medication_request: Mapping[str, Any],
        *,
        rx_id: str,
        prev: str | None = None,
        timestamp: str | None = None,
    ) -> IssuedPrescription:
        """Sign and submit an ``rx.issue`` carrying a fresh access code's digest; the code comes back to be
        printed on the patient's slip (the gateway never sees it)."""
        signed, payload, code = self._prescription(medication_request, rx_id, prev, timestamp)
        return IssuedPrescription(self.submit(signed, payload), rx_id, code, signed, payload)

    def record(self, record_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        """A record's envelope and status (``access_code``: the slip's, for a prescription's records)."""
        result: dict[str, Any] = self._do(Api.record(record_id, access_code))
        return result

    def bundle_document(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> dict[str, Any]:
        """The record's evidence bundle as the gateway serves it (JSON, not parsed)."""
        result: dict[str, Any] = self._do(Api.bundle(record_id, payload, access_code))
        return result

    def bundle(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> EvidenceBundle:
        doc = self.bundle_document(record_id, payload=payload, access_code=access_code)
        return EvidenceBundle.from_dict(doc)

    def history(
        self,
        subject: str,
        *,
        page_size: int = 100,
        access_code: AccessCodeArg = None,
        pages: HistoryPages | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of ``subject`` this reader may see, oldest first, across pages read by ``pages``
        (a cursor that does not advance raises ListingInvalid; after its page bound, ``pages.truncated``)."""
        pages = pages if pages is not None else HistoryPages()
        cursor: int | None = None
        while True:
            items, cursor = pages.accept(self._do(Api.history(subject, cursor, page_size, access_code)))
            yield from items
            if cursor is None:
                return

    def rx_check(self, rx_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        """Whether a prescription can be dispensed now; a pharmacy passes the code on the patient's slip."""
        result: dict[str, Any] = self._do(Api.rx_check(rx_id, access_code))
        return result

    def trace_code(self, code: str) -> dict[str, Any]:
        """Where and when the box with drug traceability code ``code`` (any accepted form) was dispensed:
        ``{code, form, digest, dispensed, dispense}``; TRACE_CODE_REUSED (409) to a reader who may not read
        that dispense (another pharmacy), TRACE_CODE_INVALID for a code of no accepted form."""
        result: dict[str, Any] = self._do(Api.trace_code(code))
        return result

    def lineage(self, dataset: str, *, prov: bool = False) -> dict[str, Any]:
        """A dataset's ancestors and descendants as this reader sees them (``prov``: as W3C PROV-JSON)."""
        result: dict[str, Any] = self._do(Api.lineage(dataset, prov))
        return result

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The log's RFC 9162 consistency proof from tree size ``first`` to ``second`` (not yet checked)."""
        return Api.proof(self._do(Api.consistency(first, second)))

    def checkpoint(self, size: int) -> dict[str, Any]:
        """The signed checkpoint of tree size ``size`` (``note``, ``anchor``) as the gateway serves it."""
        result: dict[str, Any] = self._do(Api.checkpoint(size))
        return result

    def wait_anchored(
        self, record_id: str, *, timeout: float = 30.0, interval: float = 0.2
    ) -> EvidenceBundle:
        """Poll until the record's bundle carries an anchor."""
        deadline = time.monotonic() + timeout
        while True:
            b = pending_or(lambda: self.bundle(record_id))
            if b is not None and b.anchor is not None:
                return b
            if time.monotonic() > deadline:
                raise AnchorTimeout(f"record {record_id} not anchored within {timeout} s")
            time.sleep(interval)

    def verify(self, record_id: str) -> EvidenceBundle:
        """Fetch the record's bundle and verify it (every step, the anchor too); return the bundle only when
        it is *verified* (the client's trust pins the keys), else raise (``KEYS_NOT_PINNED`` without them)."""
        b = self.bundle(record_id)
        self.verifier.verify(b)
        return b


class AsyncClient(ClientBase):
    """Asynchronous client of the gateway (same methods as :class:`Client`, awaitable)."""

    def __init__(
        self, *, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )

    @classmethod
    def devnet(cls, org: str, *, root: str | Path = ".devnet", gateway: str | None = None) -> AsyncClient:
        return cls(**cls._devnet_parts(org, root, gateway))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _do(self, req: Request) -> Any:
        resp = await self._http.request(
            req.method, req.path, json=req.json, params=req.params, headers=req.headers
        )
        return Api.parse(resp)

    async def submit(
        self, signed: SignedRecord, payload: Any, *, access_code: AccessCodeArg = None
    ) -> Receipt:
        return Api.receipt(await self._do(Api.submit(signed, payload, access_code)))

    async def submit_many(
        self,
        items: Sequence[tuple[SignedRecord, Any]],
        *,
        access_codes: Sequence[AccessCodeArg] | None = None,
    ) -> list[Receipt]:
        return Api.bulk(await self._do(Api.submit_many(items, access_codes)))

    async def submit_batch(
        self,
        readings: Sequence[Mapping[str, Any]],
        *,
        mn: str | None = None,
        logger: str | None = None,
        period_start: datetime,
        period_end: datetime,
        timestamp: str | None = None,
    ) -> Receipt:
        """:meth:`Client.submit_batch`, awaitable."""
        signed, payload = self._batch(
            readings,
            mn=mn,
            logger=logger,
            period_start=period_start,
            period_end=period_end,
            timestamp=timestamp,
        )
        return await self.submit(signed, payload)

    async def issue_prescription(
        self,
        medication_request: Mapping[str, Any],
        *,
        rx_id: str,
        prev: str | None = None,
        timestamp: str | None = None,
    ) -> IssuedPrescription:
        signed, payload, code = self._prescription(medication_request, rx_id, prev, timestamp)
        return IssuedPrescription(await self.submit(signed, payload), rx_id, code, signed, payload)

    async def record(self, record_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(Api.record(record_id, access_code))
        return result

    async def bundle_document(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(Api.bundle(record_id, payload, access_code))
        return result

    async def bundle(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> EvidenceBundle:
        doc = await self.bundle_document(record_id, payload=payload, access_code=access_code)
        return EvidenceBundle.from_dict(doc)

    async def history(
        self,
        subject: str,
        *,
        page_size: int = 100,
        access_code: AccessCodeArg = None,
        pages: HistoryPages | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        pages = pages if pages is not None else HistoryPages()
        cursor: int | None = None
        while True:
            req = Api.history(subject, cursor, page_size, access_code)
            items, cursor = pages.accept(await self._do(req))
            for item in items:
                yield item
            if cursor is None:
                return

    async def rx_check(self, rx_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(Api.rx_check(rx_id, access_code))
        return result

    async def trace_code(self, code: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(Api.trace_code(code))
        return result

    async def lineage(self, dataset: str, *, prov: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(Api.lineage(dataset, prov))
        return result

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The log's RFC 9162 consistency proof from tree size ``first`` to ``second`` (not yet checked)."""
        return Api.proof(await self._do(Api.consistency(first, second)))

    async def checkpoint(self, size: int) -> dict[str, Any]:
        """The signed checkpoint of tree size ``size`` (``note``, ``anchor``) as the gateway serves it."""
        result: dict[str, Any] = await self._do(Api.checkpoint(size))
        return result

    async def wait_anchored(
        self, record_id: str, *, timeout: float = 30.0, interval: float = 0.2
    ) -> EvidenceBundle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                b: EvidenceBundle | None = await self.bundle(record_id)
            except GatewayError as exc:
                if exc.code != NOT_YET_LOGGED:
                    raise
                b = None
            if b is not None and b.anchor is not None:
                return b
            if time.monotonic() > deadline:
                raise AnchorTimeout(f"record {record_id} not anchored within {timeout} s")
            await asyncio.sleep(interval)

    async def verify(self, record_id: str) -> EvidenceBundle:
        """:meth:`Client.verify`, awaitable: the bundle only when it is *verified*."""
        b = await self.bundle(record_id)
        # Verification is CPU-bound and quick (one SM2 verify + log n hashes): no thread hop needed.
        self.verifier.verify(b)
        return b


def _second(at: datetime) -> str:
    """A batch period bound: RFC 3339 UTC in whole seconds (what ``anchorBatch`` takes)."""
    if at.tzinfo is None or at.microsecond:
        raise ProvenanceError("a batch period bound is an aware datetime in whole seconds")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
