"""The gateway's API as the SDK speaks it: request shapes, answer parsing, errors and receipts, shared by the
sync and async clients (one description, so both speak the same API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from provenance.access_code import HEADER, AccessCode
from provenance.client.transport import BoundedTransport
from provenance.errors import FormatError, NotFound, ProvenanceError, ReceiptInvalid
from provenance.log.receipt import AcceptanceReceipt, verify_receipt
from provenance.records import SignedRecord, b64decode, load_json
from provenance.trace_code import normalise
from provenance.verification.trust import TrustStore


class GatewayError(ProvenanceError, code="GATEWAY_ERROR"):
    """An error answered by the gateway; ``code`` is the gateway's machine-readable code."""

    def __init__(
        self, code: str, message: str, *, status: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.code = code  # type: ignore[misc]  # instance code from the wire overrides the class default
        self.status = status


class GatewayUnreachable(ProvenanceError, code="GATEWAY_UNREACHABLE"):
    """No answer from the gateway at all (connection refused, timeout)."""


class AnchorTimeout(ProvenanceError, code="ANCHOR_TIMEOUT"):
    pass


NOT_YET_LOGGED = "NOT_YET_LOGGED"  # accepted, but no signed checkpoint covers it yet


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
class Request:
    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None


def code_header(access_code: AccessCode | str | None) -> dict[str, str] | None:
    """The request header presenting an access code (a printed or typed one is parsed first)."""
    if access_code is None:
        return None
    code = access_code if isinstance(access_code, AccessCode) else AccessCode.parse(access_code)
    return {HEADER: str(code)}


AccessCodeArg = AccessCode | str | None


class Api:
    """Request shapes and response parsing, shared by the sync and async clients."""

    @staticmethod
    def submission(signed: SignedRecord, payload: Any, code: AccessCodeArg = None) -> dict[str, Any]:
        header = code_header(code)
        extra = {"access_code": header[HEADER]} if header else {}
        return signed.to_dict() | {"payload": payload} | extra

    @staticmethod
    def submit(signed: SignedRecord, payload: Any, code: AccessCodeArg = None) -> Request:
        body = Api.submission(signed, payload)
        return Request("POST", "/api/v1/records", json=body, headers=code_header(code))

    @staticmethod
    def submit_many(
        items: Sequence[tuple[SignedRecord, Any]], codes: Sequence[AccessCodeArg] | None = None
    ) -> Request:
        if codes is not None and len(codes) != len(items):
            raise ProvenanceError("submit_many: one access code (or None) per item")
        each = codes if codes is not None else [None] * len(items)
        body = {"records": [Api.submission(s, p, c) for (s, p), c in zip(items, each, strict=True)]}
        return Request("POST", "/api/v1/records:bulk", json=body)

    @staticmethod
    def record(record_id: str, code: AccessCodeArg = None) -> Request:
        return Request("GET", f"/api/v1/records/{record_id}", headers=code_header(code))

    @staticmethod
    def bundle(record_id: str, payload: bool, code: AccessCodeArg = None) -> Request:
        params = {"payload": str(payload).lower()}
        return Request("GET", f"/api/v1/records/{record_id}/bundle", params=params, headers=code_header(code))

    @staticmethod
    def history(subject: str, after: int | None, limit: int, code: AccessCodeArg = None) -> Request:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        return Request("GET", f"/api/v1/subjects/{subject}/records", params=params, headers=code_header(code))

    @staticmethod
    def checkpoint(size: int) -> Request:
        return Request("GET", f"/api/v1/checkpoints/{size}")

    @staticmethod
    def consistency(first: int, second: int) -> Request:
        return Request("GET", "/api/v1/proofs/consistency", params={"first": first, "second": second})

    @staticmethod
    def proof(doc: Any) -> list[bytes]:
        hashes = doc.get("proof") if isinstance(doc, Mapping) else None
        if not isinstance(hashes, list):
            raise FormatError("the gateway's consistency proof has no 'proof' list")
        return [b64decode(h, what="consistency proof hash") for h in hashes]

    @staticmethod
    def note(doc: Any) -> str:
        """The signed note text of a checkpoint as the gateway serves it (``checkpoint(size)``)."""
        note = doc.get("note") if isinstance(doc, Mapping) else None
        if not isinstance(note, str):
            raise FormatError("the gateway's checkpoint has no 'note' text")
        return note

    @staticmethod
    def rx_check(rx_id: str, code: AccessCodeArg = None) -> Request:
        return Request("GET", f"/api/v1/rx/{rx_id}/check", headers=code_header(code))

    @staticmethod
    def trace_code(code: str) -> Request:
        # Normalised here first: a malformed code is refused without asking, and the query names one form.
        return Request("GET", "/api/v1/rx/codes", params={"code": normalise(code)[1]})

    @staticmethod
    def lineage(dataset: str, prov: bool) -> Request:
        return Request("GET", f"/api/v1/datasets/{dataset}/lineage" + ("/prov" if prov else ""))

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
        return [Api.receipt(item) for item in doc["items"]]


class GatewayProofs:
    """Consistency proofs from a gateway (``provenance.abc.ConsistencyProofs``) for the live anchor check.

    Synchronous, on a connection of its own, so that any verifier (the sync or the async client's, the
    CLI's) can ask for a proof in the middle of a check. The proofs are verified, never trusted.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=BoundedTransport()
        )

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        req = Api.consistency(first, second)
        return Api.proof(Api.parse(self._http.request(req.method, req.path, params=req.params)))

    def close(self) -> None:
        self._http.close()
