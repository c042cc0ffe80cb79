"""The SDK client: sign records with the organisation's SM2 key, submit them, fetch and verify evidence.

The gateway never sees the private key: records are signed here. Sync :class:`Client` and async
:class:`AsyncClient` share one request description (:class:`_Api`), so both speak the same API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from provenance._internal.files import read_bytes, read_text
from provenance.abc import Signer
from provenance.access_code import HEADER, AccessCode
from provenance.bundle import EvidenceBundle
from provenance.crypto import SM2PrivateKey
from provenance.errors import FormatError, NotFound, ProvenanceError, ReceiptInvalid
from provenance.listing import HistoryPages
from provenance.receipt import AcceptanceReceipt, verify_receipt
from provenance.records import Envelope, SignedRecord, b64decode, load_json, sign_envelope
from provenance.trust import TrustStore
from provenance.verify import AnchorChecker, Verifier


class GatewayError(ProvenanceError):
    """An error answered by the gateway; ``code`` is the gateway's machine-readable code."""

    code = "GATEWAY_ERROR"

    def __init__(
        self, code: str, message: str, *, status: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.code = code  # type: ignore[misc]  # instance code from the wire overrides the class default
        self.status = status


class GatewayUnreachable(ProvenanceError):
    """No answer from the gateway at all (connection refused, timeout)."""

    code = "GATEWAY_UNREACHABLE"


class AnchorTimeout(ProvenanceError):
    code = "ANCHOR_TIMEOUT"


NOT_YET_LOGGED = "NOT_YET_LOGGED"  # accepted, but no signed checkpoint covers it yet


def _pending_or(fetch: Callable[[], EvidenceBundle]) -> EvidenceBundle | None:
    """The bundle, or ``None`` while the record waits for its first checkpoint."""
    try:
        return fetch()
    except GatewayError as exc:
        if exc.code != NOT_YET_LOGGED:
            raise
        return None


@dataclass(frozen=True, slots=True)
class Receipt:
    """The gateway's acknowledgement of a record: its id, status and signed acceptance receipt (a note)."""

    id: str
    status: str
    raw: Mapping[str, Any]
    acceptance: str | None = None

    def verify(self, trust: TrustStore) -> AcceptanceReceipt:
        """The acceptance receipt, once a log key pinned in ``trust`` signed it for this record id."""
        if self.acceptance is None:
            raise ReceiptInvalid("the gateway sent no acceptance receipt", details={"check": "format"})
        return verify_receipt(self.acceptance, trust, record_id=self.id)


@dataclass(frozen=True, slots=True)
class IssuedPrescription:
    """An ``rx.issue`` accepted by the gateway, with the access code to print on the patient's slip."""

    receipt: Receipt
    rx_id: str
    access_code: AccessCode  # ``str()`` gives the printed form; a pharmacy passes it as ``access_code=``
    signed: SignedRecord  # submit it again (with ``payload``) to retry: the same record, idempotent
    payload: dict[str, Any]  # the MedicationRequest as signed: carrying the code's digest, not the code


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None


def _code(access_code: AccessCode | str | None) -> dict[str, str] | None:
    """The request header presenting an access code (a printed or typed one is parsed first)."""
    if access_code is None:
        return None
    code = access_code if isinstance(access_code, AccessCode) else AccessCode.parse(access_code)
    return {HEADER: str(code)}


AccessCodeArg = AccessCode | str | None


class _Api:
    """Request shapes and response parsing, shared by the sync and async clients."""

    @staticmethod
    def submission(signed: SignedRecord, payload: Any) -> dict[str, Any]:
        return signed.to_dict() | {"payload": payload}

    @staticmethod
    def submit(signed: SignedRecord, payload: Any) -> _Request:
        return _Request("POST", "/api/v1/records", json=_Api.submission(signed, payload))

    @staticmethod
    def submit_many(items: Sequence[tuple[SignedRecord, Any]]) -> _Request:
        body = {"records": [_Api.submission(s, p) for s, p in items]}
        return _Request("POST", "/api/v1/records:bulk", json=body)

    @staticmethod
    def record(record_id: str, code: AccessCodeArg = None) -> _Request:
        return _Request("GET", f"/api/v1/records/{record_id}", headers=_code(code))

    @staticmethod
    def bundle(record_id: str, payload: bool, code: AccessCodeArg = None) -> _Request:
        params = {"payload": str(payload).lower()}
        return _Request("GET", f"/api/v1/records/{record_id}/bundle", params=params, headers=_code(code))

    @staticmethod
    def history(subject: str, after: int | None, limit: int, code: AccessCodeArg = None) -> _Request:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        return _Request("GET", f"/api/v1/subjects/{subject}/records", params=params, headers=_code(code))

    @staticmethod
    def checkpoint(size: int) -> _Request:
        return _Request("GET", f"/api/v1/checkpoints/{size}")

    @staticmethod
    def consistency(first: int, second: int) -> _Request:
        return _Request("GET", "/api/v1/proofs/consistency", params={"first": first, "second": second})

    @staticmethod
    def proof(doc: Any) -> list[bytes]:
        hashes = doc.get("proof") if isinstance(doc, Mapping) else None
        if not isinstance(hashes, list):
            raise FormatError("the gateway's consistency proof has no 'proof' list")
        return [b64decode(h, what="consistency proof hash") for h in hashes]

    @staticmethod
    def rx_check(rx_id: str, code: AccessCodeArg = None) -> _Request:
        return _Request("GET", f"/api/v1/rx/{rx_id}/check", headers=_code(code))

    @staticmethod
    def parse(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
                code, message, details = err["code"], err["message"], err.get("details") or {}
            except (ValueError, KeyError, TypeError):
                code, message, details = f"HTTP_{resp.status_code}", resp.text[:200], {}
            if resp.status_code == 404 and code == "NOT_FOUND":
                raise NotFound(message, details=details)
            raise GatewayError(code, message, status=resp.status_code, details=details)
        # Strict, as every JSON the SDK verifies: a bundle naming a key twice is refused, not read one way.
        return load_json(resp.content, what="gateway answer")

    @staticmethod
    def receipt(doc: Mapping[str, Any]) -> Receipt:
        # The gateway answers {"id", "existing", "receipt"} (bulk items add "status": accepted | rejected).
        status = "existing" if doc.get("existing") else doc.get("status") or "accepted"
        note = doc.get("receipt")
        return Receipt(
            id=doc.get("id") or "", status=status, raw=doc, acceptance=note if isinstance(note, str) else None
        )

    @staticmethod
    def bulk(doc: Mapping[str, Any]) -> list[Receipt]:
        """Per-item results of a bulk submission, in request order (rejected items carry ``raw['error']``)."""
        return [_Api.receipt(item) for item in doc["items"]]


class GatewayProofs:
    """Consistency proofs from a gateway (``provenance.abc.ConsistencyProofs``) for the live anchor check.

    Synchronous, on a connection of its own, so that any verifier (the sync or the async client's, the
    CLI's) can ask for a proof in the middle of a check. The proofs are verified, never trusted.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        req = _Api.consistency(first, second)
        return _Api.proof(_Api.parse(self._http.request(req.method, req.path, params=req.params)))

    def close(self) -> None:
        self._http.close()


class _Base:
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
        manifest = json.loads(read_text(root / "manifest.json", what="devnet manifest"))
        entry = next((o for o in manifest.get("orgs", []) if o.get("id") == org), None)
        if entry is None:
            raise NotFound(f"organisation '{org}' is not in the devnet manifest")
        trust_path = root / "trust.json"
        # The devnet's own chain checks anchors live; the ProvenanceLog address is pinned from the manifest.
        from provenance.anchor import ChainAnchorChecker

        base_url = gateway or "http://127.0.0.1:8000"
        token = read_text(root / "tokens" / f"{org}.token", what="token file").strip()
        trust = TrustStore.load(trust_path) if trust_path.exists() else None
        checker = ChainAnchorChecker.from_rpc(
            manifest["rpc_url"],
            contract=manifest["contracts"]["ProvenanceLog"],
            proofs=GatewayProofs(base_url, token=token),
            seal_keys=trust.seal_keys if trust else (),
        )
        return {
            "base_url": base_url,
            "org": org,
            "token": token,
            "signer": SM2PrivateKey.from_pem(read_bytes(root / entry["sm2_key_file"], what="SM2 key")),
            "trust": trust,
            "anchor_checker": checker,
        }


class Client(_Base):
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

    def _do(self, req: _Request) -> Any:
        resp = self._http.request(req.method, req.path, json=req.json, params=req.params, headers=req.headers)
        return _Api.parse(resp)

    def submit(self, signed: SignedRecord, payload: Any) -> Receipt:
        """Submit one signed record with its payload; the gateway answers 202 with the record id."""
        return _Api.receipt(self._do(_Api.submit(signed, payload)))

    def submit_many(self, items: Sequence[tuple[SignedRecord, Any]]) -> list[Receipt]:
        """Submit many records in one request (all or each, as the gateway reports per item)."""
        return _Api.bulk(self._do(_Api.submit_many(items)))

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
        result: dict[str, Any] = self._do(_Api.record(record_id, access_code))
        return result

    def bundle_document(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> dict[str, Any]:
        """The record's evidence bundle as the gateway serves it (JSON, not parsed)."""
        result: dict[str, Any] = self._do(_Api.bundle(record_id, payload, access_code))
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
            items, cursor = pages.accept(self._do(_Api.history(subject, cursor, page_size, access_code)))
            yield from items
            if cursor is None:
                return

    def rx_check(self, rx_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        """Whether a prescription can be dispensed now; a pharmacy passes the code on the patient's slip."""
        result: dict[str, Any] = self._do(_Api.rx_check(rx_id, access_code))
        return result

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The log's RFC 9162 consistency proof from tree size ``first`` to ``second`` (not yet checked)."""
        return _Api.proof(self._do(_Api.consistency(first, second)))

    def checkpoint(self, size: int) -> dict[str, Any]:
        """The signed checkpoint of tree size ``size`` (``note``, ``anchor``) as the gateway serves it."""
        result: dict[str, Any] = self._do(_Api.checkpoint(size))
        return result

    def wait_anchored(
        self, record_id: str, *, timeout: float = 30.0, interval: float = 0.2
    ) -> EvidenceBundle:
        """Poll until the record's bundle carries an anchor."""
        deadline = time.monotonic() + timeout
        while True:
            b = _pending_or(lambda: self.bundle(record_id))
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


class AsyncClient(_Base):
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

    async def _do(self, req: _Request) -> Any:
        resp = await self._http.request(
            req.method, req.path, json=req.json, params=req.params, headers=req.headers
        )
        return _Api.parse(resp)

    async def submit(self, signed: SignedRecord, payload: Any) -> Receipt:
        return _Api.receipt(await self._do(_Api.submit(signed, payload)))

    async def submit_many(self, items: Sequence[tuple[SignedRecord, Any]]) -> list[Receipt]:
        return _Api.bulk(await self._do(_Api.submit_many(items)))

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
        result: dict[str, Any] = await self._do(_Api.record(record_id, access_code))
        return result

    async def bundle_document(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(_Api.bundle(record_id, payload, access_code))
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
            req = _Api.history(subject, cursor, page_size, access_code)
            items, cursor = pages.accept(await self._do(req))
            for item in items:
                yield item
            if cursor is None:
                return

    async def rx_check(self, rx_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(_Api.rx_check(rx_id, access_code))
        return result

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The log's RFC 9162 consistency proof from tree size ``first`` to ``second`` (not yet checked)."""
        return _Api.proof(await self._do(_Api.consistency(first, second)))

    async def checkpoint(self, size: int) -> dict[str, Any]:
        """The signed checkpoint of tree size ``size`` (``note``, ``anchor``) as the gateway serves it."""
        result: dict[str, Any] = await self._do(_Api.checkpoint(size))
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
